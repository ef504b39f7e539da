//! One typed call into a plugin: [`Call`] says what to call, with which input, context,
//! deadline and cancellation; [`Answer`] is what came back.

use std::fmt;
use std::time::Duration;

use outpost_protocol::methods::{
    CallContext, CommandResult, HttpRequest, HttpResponse, ToolResult,
};
use outpost_protocol::{ErrorCode, ErrorObject, ProviderCapability, RegistrationKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::hooks::HookOutcome;
use super::plugin::Origin;

/// What a call addresses: every kind of registration a gateway can call.
///
/// The wire names are the registration kinds' (`gatewayMethod`, `httpRoute`...); the
/// shorter words of `outpost call` (`method`, `http`, `context-engine`) are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CallKind {
    /// A tool: `name` is the tool, the input its arguments (an object).
    Tool,
    /// A slash command: `name` is the command, the input its argument text (a string).
    Command,
    /// A gateway method: `name` is the method, the input its params.
    #[serde(alias = "method")]
    GatewayMethod,
    /// Every hook of an event: `name` is the event, the input its payload.
    Hook,
    /// An HTTP route: `name` is the request path, the input the rest of the request
    /// (`method`, `headers`, `query`, `body`).
    #[serde(alias = "http")]
    HttpRoute,
    /// A provider operation: `name` is `<capability>:<id>`, the input its params.
    Provider,
    /// A channel operation: `name` is the channel id, the input its params.
    Channel,
    /// A context-engine operation: `name` is the engine id, the input its params.
    #[serde(alias = "context-engine")]
    ContextEngine,
}

impl CallKind {
    /// Every kind.
    pub const ALL: [CallKind; 8] = [
        Self::Tool,
        Self::Command,
        Self::GatewayMethod,
        Self::Hook,
        Self::HttpRoute,
        Self::Provider,
        Self::Channel,
        Self::ContextEngine,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Command => "command",
            Self::GatewayMethod => "gatewayMethod",
            Self::Hook => "hook",
            Self::HttpRoute => "httpRoute",
            Self::Provider => "provider",
            Self::Channel => "channel",
            Self::ContextEngine => "contextEngine",
        }
    }

    /// Whether calls of this kind name an operation (`provider`, `channel`,
    /// `contextEngine`).
    pub fn takes_operation(self) -> bool {
        matches!(self, Self::Provider | Self::Channel | Self::ContextEngine)
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call to a plugin's registration, routed by [`Supervisor::call`].
///
/// Build it with the constructor of its kind (or [`Call::from_parts`] from loosely typed
/// input, as the network API does), then say who is calling, by when, and what cancels
/// it:
///
/// ```
/// use std::time::Duration;
/// use outpost_supervisor::Call;
/// use serde_json::json;
///
/// let call = Call::tool("word_count", json!({"text": "one two"}).as_object().unwrap().clone())
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(call.kind().as_str(), "tool");
/// ```
///
/// A call ends exactly once: with its answer, with the plugin's error, or with the
/// supervisor's (every error has a code of docs/protocol.md §11). Dropping the future of
/// [`Supervisor::call`], or cancelling the token given to [`Call::with_cancel`], cancels
/// it: the plugin gets `$/cancel`.
///
/// [`Supervisor::call`]: crate::Supervisor::call
#[derive(Clone, Debug)]
#[must_use = "a call does nothing until it is given to Supervisor::call"]
pub struct Call {
    pub(crate) target: Target,
    pub(crate) context: CallContext,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel: Option<CancellationToken>,
}

/// What a call addresses, with its input.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Tool {
        name: String,
        arguments: Map<String, Value>,
    },
    Command {
        text: String,
    },
    Method {
        method: String,
        params: Value,
        origin: Origin,
    },
    Hook {
        event: String,
        payload: Value,
    },
    Http {
        request: HttpRequest,
        gateway_authenticated: bool,
    },
    Provider {
        capability: ProviderCapability,
        id: String,
        operation: String,
        params: Value,
    },
    Channel {
        id: String,
        operation: String,
        params: Value,
    },
    ContextEngine {
        id: String,
        operation: String,
        params: Value,
    },
}

impl Call {
    fn new(target: Target) -> Self {
        Self {
            target,
            context: CallContext::default(),
            timeout: None,
            cancel: None,
        }
    }

    /// Runs a tool. The arguments are checked against the tool's `inputSchema` before
    /// anything is sent.
    pub fn tool(name: impl Into<String>, arguments: Map<String, Value>) -> Self {
        Self::new(Target::Tool {
            name: name.into(),
            arguments,
        })
    }

    /// Runs the slash command in a message body (`/name args`, the name matched
    /// case-insensitively). When no plugin command matches (or arguments were given to
    /// a command that takes none), the call fails with `-32008` and the message is the
    /// gateway's to handle.
    pub fn command(text: impl Into<String>) -> Self {
        Self::new(Target::Command { text: text.into() })
    }

    /// Calls a gateway method a plugin registered.
    pub fn method(method: impl Into<String>, params: Value) -> Self {
        Self::new(Target::Method {
            method: method.into(),
            params,
            origin: Origin::Gateway,
        })
    }

    /// The same method call, made by another plugin (`host/callMethod`): it counts
    /// against the owner's share for such calls ([`super::plugin::Gate`]).
    pub(crate) fn made_by_a_plugin(mut self) -> Self {
        if let Target::Method { origin, .. } = &mut self.target {
            *origin = Origin::Plugin;
        }
        self
    }

    /// Runs every hook registered for `event`, highest priority first, and merges
    /// their results ([`Answer::Hook`]). A failing hook does not fail the call.
    pub fn hook(event: impl Into<String>, payload: Value) -> Self {
        Self::new(Target::Hook {
            event: event.into(),
            payload,
        })
    }

    /// Hands an HTTP request to the plugin route that matches its path. Routes
    /// registered with `auth: "gateway"` refuse it unless
    /// [`Call::gateway_authenticated`] says the gateway's own authentication accepted
    /// it. No matching route: `-32008`.
    pub fn http(request: HttpRequest) -> Self {
        Self::new(Target::Http {
            request,
            gateway_authenticated: false,
        })
    }

    /// One operation of a provider.
    pub fn provider(
        capability: ProviderCapability,
        id: impl Into<String>,
        operation: impl Into<String>,
        params: Value,
    ) -> Self {
        Self::new(Target::Provider {
            capability,
            id: id.into(),
            operation: operation.into(),
            params,
        })
    }

    /// One operation of a channel.
    pub fn channel(id: impl Into<String>, operation: impl Into<String>, params: Value) -> Self {
        Self::new(Target::Channel {
            id: id.into(),
            operation: operation.into(),
            params,
        })
    }

    /// One operation of a context engine.
    pub fn context_engine(
        id: impl Into<String>,
        operation: impl Into<String>,
        params: Value,
    ) -> Self {
        Self::new(Target::ContextEngine {
            id: id.into(),
            operation: operation.into(),
            params,
        })
    }

    /// A call from loosely typed parts, as a network client or a command line gives
    /// them: the kind, its `name` (see [`CallKind`]), the input as JSON (absent: no
    /// arguments, an empty payload, no params) and the operation of provider, channel
    /// and context-engine calls. A part that does not fit is `-32602`, saying which.
    pub fn from_parts(
        kind: CallKind,
        name: &str,
        input: Option<Value>,
        operation: Option<&str>,
    ) -> Result<Self, ErrorObject> {
        let invalid = |message: String| {
            ErrorObject::new(ErrorCode::InvalidParams, message)
                .with_data(json!({ "kind": kind, "name": name }))
        };
        let operation = || {
            operation
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("a {kind} call needs an operation (`operation`)")))
        };
        let object = |input: Option<Value>, what: &str| match input {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(fields)) => Ok(fields),
            Some(other) => Err(invalid(format!(
                "{what} must be a JSON object, not {}",
                kind_of(&other)
            ))),
        };
        let params = input.clone().unwrap_or(Value::Null);
        Ok(match kind {
            CallKind::Tool => Self::tool(name, object(input, "a tool's arguments")?),
            CallKind::Command => {
                let text = match input {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text,
                    Some(other) => {
                        return Err(invalid(format!(
                            "a command's input is its argument text as a string (e.g. \"list\"), not {}",
                            kind_of(&other)
                        )));
                    }
                };
                let name = name.trim().trim_start_matches('/');
                Self::command(format!("/{name} {text}").trim_end())
            }
            CallKind::GatewayMethod => Self::method(name, params),
            CallKind::Hook => Self::hook(name, Value::Object(object(input, "a hook's payload")?)),
            CallKind::HttpRoute => {
                let mut fields =
                    object(input, "an HTTP call's input (method, headers, query, body)")?;
                fields.insert("path".into(), Value::String(name.to_owned()));
                fields
                    .entry("method")
                    .or_insert_with(|| Value::String("GET".into()));
                let request = serde_json::from_value(Value::Object(fields))
                    .map_err(|e| invalid(format!("the input is not an HTTP request: {e}")))?;
                Self::http(request)
            }
            CallKind::Provider => {
                let (capability, id) = name.split_once(':').ok_or_else(|| {
                    invalid(format!(
                        "a provider is named `<capability>:<id>` (e.g. `embedding:my-embedder`), not `{name}`"
                    ))
                })?;
                let capability = serde_json::from_value(Value::String(capability.to_owned()))
                    .map_err(|_| {
                        invalid(format!(
                            "`{capability}` is not a provider capability of docs/protocol.md §9.8"
                        ))
                    })?;
                Self::provider(capability, id, operation()?, params)
            }
            CallKind::Channel => Self::channel(name, operation()?, params),
            CallKind::ContextEngine => Self::context_engine(name, operation()?, params),
        })
    }

    /// Who is calling: the session, agent, channel, sender... (docs/protocol.md §10).
    /// Its `timeoutMs` is ignored: the supervisor sets it from the deadline.
    pub fn with_context(mut self, context: CallContext) -> Self {
        self.context = context;
        self
    }

    /// The call's time budget, from when [`Supervisor::call`](crate::Supervisor::call)
    /// is entered: waiting for a restarting plugin, a call slot and the answer all
    /// count. Default: the plugin's `timeouts.callMs`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Cancels the call when `token` is cancelled (the call then fails with `-32800`
    /// and the plugin gets `$/cancel`). Dropping the call's future does the same.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// For [`Call::http`]: whether the gateway's own authentication accepted the
    /// request (routes registered with `auth: "gateway"` need it). Ignored by other
    /// kinds.
    pub fn gateway_authenticated(mut self, authenticated: bool) -> Self {
        if let Target::Http {
            gateway_authenticated,
            ..
        } = &mut self.target
        {
            *gateway_authenticated = authenticated;
        }
        self
    }

    /// The call's kind.
    pub fn kind(&self) -> CallKind {
        match &self.target {
            Target::Tool { .. } => CallKind::Tool,
            Target::Command { .. } => CallKind::Command,
            Target::Method { .. } => CallKind::GatewayMethod,
            Target::Hook { .. } => CallKind::Hook,
            Target::Http { .. } => CallKind::HttpRoute,
            Target::Provider { .. } => CallKind::Provider,
            Target::Channel { .. } => CallKind::Channel,
            Target::ContextEngine { .. } => CallKind::ContextEngine,
        }
    }

    /// The registration the call needs, as the registry keys it, when a manifest can
    /// declare it (a tool, a method, a provider, a channel, an engine); `None` for a
    /// command, a hook or a route.
    pub fn registration_key(&self) -> Option<(RegistrationKind, String)> {
        Some(match &self.target {
            Target::Tool { name, .. } => (RegistrationKind::Tool, name.clone()),
            Target::Method { method, .. } => (RegistrationKind::GatewayMethod, method.clone()),
            Target::Provider { capability, id, .. } => {
                (RegistrationKind::Provider, format!("{capability}:{id}"))
            }
            Target::Channel { id, .. } => (RegistrationKind::Channel, id.clone()),
            Target::ContextEngine { id, .. } => (RegistrationKind::ContextEngine, id.clone()),
            Target::Command { .. } | Target::Hook { .. } | Target::Http { .. } => return None,
        })
    }
}

/// What a call came to. Serialized as the inner value alone.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Answer {
    /// A tool's result (`isError: true` when the tool ran but failed).
    Tool(ToolResult),
    /// A command's reply.
    Command(CommandResult),
    /// The merged result of an event's hooks, with each run.
    Hook(HookOutcome),
    /// An HTTP route's response.
    Http(HttpResponse),
    /// A gateway method's, provider's, channel's or context engine's result.
    Value(Value),
}

impl Answer {
    /// The answer as JSON, as the network API sends it.
    pub fn into_value(self) -> Value {
        match self {
            Self::Value(value) => value,
            other => serde_json::to_value(other).expect("answers serialize"),
        }
    }
}

/// "an array", "a string"...: for error messages about JSON input.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kind, name, input, operation, and what the error must say.
    type Case<'a> = (CallKind, &'a str, Option<Value>, Option<&'a str>, &'a str);

    #[test]
    fn parts_become_calls_or_say_what_does_not_fit() {
        let call =
            Call::from_parts(CallKind::Command, "/Notes", Some(json!("list all")), None).unwrap();
        assert!(matches!(&call.target, Target::Command { text } if text == "/Notes list all"));
        let call = Call::from_parts(CallKind::Command, "notes", None, None).unwrap();
        assert!(matches!(&call.target, Target::Command { text } if text == "/notes"));
        let call = Call::from_parts(CallKind::Hook, "before_prompt_build", None, None).unwrap();
        assert!(matches!(&call.target, Target::Hook { payload, .. } if *payload == json!({})));
        let call = Call::from_parts(
            CallKind::HttpRoute,
            "/notes/export",
            Some(json!({"query": "a=1"})),
            None,
        )
        .unwrap();
        assert!(
            matches!(&call.target, Target::Http { request, gateway_authenticated: false } if request.method == "GET" && request.query.as_deref() == Some("a=1"))
        );
        assert_eq!(
            Call::from_parts(CallKind::Provider, "embedding:vec", None, Some("embed"))
                .unwrap()
                .registration_key(),
            Some((RegistrationKind::Provider, "embedding:vec".into()))
        );

        let refused: &[Case<'_>] = &[
            (CallKind::Tool, "t", Some(json!([1])), None, "not an array"),
            (CallKind::Command, "c", Some(json!({})), None, "as a string"),
            (
                CallKind::Provider,
                "vec",
                None,
                Some("op"),
                "<capability>:<id>",
            ),
            (
                CallKind::Provider,
                "nope:vec",
                None,
                Some("op"),
                "not a provider capability",
            ),
            (CallKind::Channel, "chat", None, None, "needs an operation"),
            (
                CallKind::HttpRoute,
                "/x",
                Some(json!({"method": 3})),
                None,
                "not an HTTP request",
            ),
        ];
        for (kind, name, input, operation, says) in refused {
            let error = Call::from_parts(*kind, name, input.clone(), *operation).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParams);
            assert!(
                error.message.contains(says),
                "{kind} {name}: {}",
                error.message
            );
        }
    }

    #[test]
    fn kinds_have_wire_names_and_the_command_line_words() {
        for kind in CallKind::ALL {
            let parsed: CallKind = serde_json::from_value(json!(kind.as_str())).unwrap();
            assert_eq!(parsed, kind);
        }
        for (word, kind) in [
            ("method", CallKind::GatewayMethod),
            ("http", CallKind::HttpRoute),
            ("context-engine", CallKind::ContextEngine),
        ] {
            assert_eq!(
                serde_json::from_value::<CallKind>(json!(word)).unwrap(),
                kind
            );
        }
    }
}
