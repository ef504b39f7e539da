//! Every method of protocol v1 with its params and result types.
//!
//! A method is a marker type implementing [`RequestType`] or [`NotificationType`]; the
//! peer uses them for typed calls (`peer.request::<ToolInvoke>(params, ..)`). Params and
//! results are plain data: camelCase on the wire, optional members defaulted, unknown
//! members ignored.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ProviderCapability, Registration, RegistrationKind, RejectionCode, RequestId};

/// A request method: its name, params and result.
pub trait RequestType {
    /// The method name on the wire.
    const METHOD: &'static str;
    /// The `params` member.
    type Params: Serialize + DeserializeOwned;
    /// The `result` member.
    type Result: Serialize + DeserializeOwned;
}

/// A notification method: its name and params.
pub trait NotificationType {
    /// The method name on the wire.
    const METHOD: &'static str;
    /// The `params` member.
    type Params: Serialize + DeserializeOwned;
}

/// Who sends a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// The host (supervisor) sends it; the plugin answers.
    HostToPlugin,
    /// The plugin sends it; the host answers.
    PluginToHost,
    /// Either side.
    Both,
}

macro_rules! request {
    ($(#[$doc:meta])* $name:ident = $method:literal, $params:ty => $result:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl RequestType for $name {
            const METHOD: &'static str = $method;
            type Params = $params;
            type Result = $result;
        }
    };
}

macro_rules! notification {
    ($(#[$doc:meta])* $name:ident = $method:literal, $params:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl NotificationType for $name {
            const METHOD: &'static str = $method;
            type Params = $params;
        }
    };
}

request!(
    /// Host -> plugin, first message: negotiate the version, hand over config and limits,
    /// receive the plugin's registrations.
    Initialize = "initialize", InitializeParams => InitializeResult
);
notification!(
    /// Host -> plugin, after `initialize`: what the host accepted and rejected.
    Initialized = "initialized", InitializedParams
);
request!(
    /// Host -> plugin: stop services and flush; stdin closes next.
    Shutdown = "shutdown", EmptyObject => EmptyObject
);
request!(
    /// Either side, any time after `initialize` (and before, answered with `-32002`).
    Ping = "ping", EmptyObject => EmptyObject
);
notification!(
    /// Either side: stop working on a request; it is still answered.
    Cancel = "$/cancel", CancelParams
);
notification!(
    /// Either side: progress of a request the other side sent.
    Progress = "$/progress", ProgressParams
);
notification!(
    /// Plugin -> host: a log record, shown in the host's log tagged with the plugin id.
    Log = "log", LogParams
);
request!(
    /// Host -> plugin: run a tool.
    ToolInvoke = "tool/invoke", ToolInvokeParams => ToolResult
);
request!(
    /// Host -> plugin: run a hook handler for an event.
    HookRun = "hook/run", HookRunParams => HookResult
);
request!(
    /// Host -> plugin: run a slash command.
    CommandRun = "command/run", CommandRunParams => CommandResult
);
request!(
    /// Host -> plugin: call a gateway method of the plugin.
    MethodCall = "method/call", MethodCallParams => Value
);
request!(
    /// Host -> plugin: handle an HTTP request on a registered route.
    HttpHandle = "http/handle", HttpHandleParams => HttpResponse
);
request!(
    /// Host -> plugin: start a registered service.
    ServiceStart = "service/start", ServiceParams => EmptyObject
);
request!(
    /// Host -> plugin: stop a registered service.
    ServiceStop = "service/stop", ServiceParams => EmptyObject
);
request!(
    /// Host -> plugin: one operation of a provider.
    ProviderCall = "provider/call", ProviderCallParams => Value
);
request!(
    /// Host -> plugin: one operation of a channel.
    ChannelCall = "channel/call", ChannelCallParams => Value
);
request!(
    /// Host -> plugin: one operation of a context engine.
    ContextEngineCall = "contextEngine/call", ContextEngineCallParams => Value
);
request!(
    /// Plugin -> host: call a gateway method (the core's or another plugin's), if policy
    /// allows.
    HostCallMethod = "host/callMethod", HostCallMethodParams => Value
);
request!(
    /// Plugin -> host: read the plugin's own validated config.
    HostGetConfig = "host/getConfig", EmptyObject => HostGetConfigResult
);
request!(
    /// Host -> plugin (fixture plugins only): answer with the value sent.
    FixtureEcho = "fixture/echo", FixtureEchoParams => FixtureEchoParams
);
request!(
    /// Host -> plugin (fixture plugins only): wait, honouring `$/cancel`.
    FixtureSleep = "fixture/sleep", FixtureSleepParams => EmptyObject
);
request!(
    /// Host -> plugin (fixture plugins only): send `$/progress` notifications, then answer.
    FixtureProgress = "fixture/progress", FixtureProgressParams => EmptyObject
);
request!(
    /// Host -> plugin (fixture plugins only): send a request to the host and report how it
    /// was answered.
    FixtureCallHost = "fixture/callHost", FixtureCallHostParams => FixtureCallHostResult
);
request!(
    /// Host -> plugin (fixture plugins only): send a `log` notification, then answer.
    FixtureLog = "fixture/log", LogParams => EmptyObject
);
request!(
    /// Host -> plugin (fixture plugins only): write text to stderr, then answer.
    FixtureStderr = "fixture/stderr", FixtureStderrParams => EmptyObject
);

/// Every method of protocol v1: name, direction, and whether it is a request.
pub const METHODS: &[(&str, Direction, bool)] = &[
    (Initialize::METHOD, Direction::HostToPlugin, true),
    (Initialized::METHOD, Direction::HostToPlugin, false),
    (Shutdown::METHOD, Direction::HostToPlugin, true),
    (Ping::METHOD, Direction::Both, true),
    (Cancel::METHOD, Direction::Both, false),
    (Progress::METHOD, Direction::Both, false),
    (Log::METHOD, Direction::PluginToHost, false),
    (ToolInvoke::METHOD, Direction::HostToPlugin, true),
    (HookRun::METHOD, Direction::HostToPlugin, true),
    (CommandRun::METHOD, Direction::HostToPlugin, true),
    (MethodCall::METHOD, Direction::HostToPlugin, true),
    (HttpHandle::METHOD, Direction::HostToPlugin, true),
    (ServiceStart::METHOD, Direction::HostToPlugin, true),
    (ServiceStop::METHOD, Direction::HostToPlugin, true),
    (ProviderCall::METHOD, Direction::HostToPlugin, true),
    (ChannelCall::METHOD, Direction::HostToPlugin, true),
    (ContextEngineCall::METHOD, Direction::HostToPlugin, true),
    (HostCallMethod::METHOD, Direction::PluginToHost, true),
    (HostGetConfig::METHOD, Direction::PluginToHost, true),
    (FixtureEcho::METHOD, Direction::HostToPlugin, true),
    (FixtureSleep::METHOD, Direction::HostToPlugin, true),
    (FixtureProgress::METHOD, Direction::HostToPlugin, true),
    (FixtureCallHost::METHOD, Direction::HostToPlugin, true),
    (FixtureLog::METHOD, Direction::HostToPlugin, true),
    (FixtureStderr::METHOD, Direction::HostToPlugin, true),
];

/// `{}`: params or result with no members (any members sent are ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EmptyObject {}

// ---------------------------------------------------------------------------------
// Handshake

/// `initialize` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The protocol versions the host speaks, most preferred first.
    pub protocol_versions: Vec<String>,
    /// The host's name and version.
    pub host: ImplementationInfo,
    /// The plugin id from the manifest; the plugin must answer with the same id.
    pub plugin_id: String,
    /// The plugin's config, validated against the manifest's `configSchema`, with
    /// schema defaults applied. Always an object.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// The config of each messaging channel the plugin's manifest declares that the
    /// operator configured (`channels.<id>`), by channel id, as written; absent when
    /// there is none.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub channels: Map<String, Value>,
    /// Limits the plugin must respect.
    pub limits: Limits,
    /// What the host offers the plugin.
    #[serde(default)]
    pub capabilities: HostCapabilities,
    /// The host's process id (for plugins that watch their parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<u32>,
}

/// A name and a version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImplementationInfo {
    /// e.g. `outpost`.
    pub name: String,
    /// e.g. `0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Limits announced by the host in `initialize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// The longest line either side may send, in bytes, without the newline.
    pub max_message_bytes: u64,
    /// How many host requests may be in flight to the plugin at once.
    pub max_concurrent_requests: u32,
    /// How long the plugin has between `shutdown` and being signalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout_ms: Option<u64>,
}

/// What the host offers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HostCapabilities {
    /// The plugin -> host request methods the host answers (`host/callMethod`...).
    #[serde(default)]
    pub runtime: Vec<String>,
}

/// `initialize` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    /// One of the host's `protocolVersions`.
    pub protocol_version: String,
    /// The plugin's identity; `id` must equal the manifest id.
    pub plugin: PluginInfo,
    /// Optional behaviours the plugin implements.
    #[serde(default)]
    pub capabilities: PluginCapabilities,
    /// Everything the plugin offers. A host parses each entry on its own, so one
    /// malformed entry is rejected alone (see [`crate::parse_registrations`]).
    #[serde(default)]
    pub registrations: Vec<Registration>,
}

/// A plugin's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    /// Must equal the manifest id.
    pub id: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The plugin's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Optional behaviours a plugin declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PluginCapabilities {
    /// The plugin answers the `fixture/*` methods (for the conformance suite's deeper
    /// checks). Production plugins leave this off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixture: bool,
}

/// `initialized` params: the host's verdict on each registration, by its index in
/// `registrations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InitializedParams {
    /// Registrations now live in the gateway.
    #[serde(default)]
    pub accepted: Vec<AcceptedRegistration>,
    /// Registrations refused, with why.
    #[serde(default)]
    pub rejected: Vec<RejectedRegistration>,
}

/// A registration the host accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AcceptedRegistration {
    /// The index in the `initialize` result's `registrations`.
    pub index: usize,
    /// Its kind.
    pub kind: RegistrationKind,
    /// Its name within the kind ([`Registration::key`]).
    pub key: String,
}

/// A registration the host refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RejectedRegistration {
    /// The index in the `initialize` result's `registrations`.
    pub index: usize,
    /// Its kind, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RegistrationKind>,
    /// Its name within the kind, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The rule broken.
    pub code: RejectionCode,
    /// What is wrong and what to change.
    pub reason: String,
}

// ---------------------------------------------------------------------------------
// Utilities

/// `$/cancel` params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CancelParams {
    /// The id of the request to cancel, as the receiver of this notification got it.
    pub id: RequestId,
}

/// `$/progress` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProgressParams {
    /// The id of the request this progress belongs to (the other side's request).
    pub id: RequestId,
    /// Work done so far; should increase.
    pub progress: f64,
    /// Total work, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// A short status line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Syslog severities (RFC 5424), lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Normal but significant.
    Notice,
    /// Something may need attention.
    Warning,
    /// An operation failed.
    Error,
    /// A component failed.
    Critical,
    /// Action is needed now.
    Alert,
    /// The plugin is unusable.
    Emergency,
}

/// `log` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LogParams {
    /// Severity.
    pub level: LogLevel,
    /// The record.
    pub message: String,
    /// Which part of the plugin logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// Structured fields (kept as JSON in the host's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Map<String, Value>>,
}

// ---------------------------------------------------------------------------------
// Invocation

/// Who and what a call is for. Every member is optional; the host fills what it knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CallContext {
    /// The session the call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    /// The agent making the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The channel the triggering message came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The channel account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The sender of the triggering message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// Whether the sender is authorized (commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_authorized_sender: Option<bool>,
    /// The caller's deadline, as milliseconds left when the host sent the request. The
    /// host cancels the request (`$/cancel`) when it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `tool/invoke` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ToolInvokeParams {
    /// A tool this plugin registered.
    pub name: String,
    /// Valid against the tool's `inputSchema` (the host checks before sending).
    #[serde(default)]
    pub arguments: Map<String, Value>,
    /// Who is calling.
    #[serde(default)]
    pub context: CallContext,
}

/// A tool's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// What the model sees.
    #[serde(default)]
    pub content: Vec<Content>,
    /// The tool ran but failed; `content` says why, for the model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// Structured detail for the gateway (not shown to the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ToolResult {
    /// A result of one text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::Text { text: text.into() }],
            ..Self::default()
        }
    }
}

/// A block of tool output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Content {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A JSON value.
    Json {
        /// The value.
        json: Value,
    },
    /// An image, base64-encoded.
    #[serde(rename_all = "camelCase")]
    Image {
        /// Base64 (standard alphabet, padded).
        data: String,
        /// e.g. `image/png`.
        mime_type: String,
    },
}

/// `hook/run` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HookRunParams {
    /// The event, one the plugin registered for.
    pub event: String,
    /// The handler's `id`, when it registered one (several handlers for one event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The event's data (its shape is the gateway's hook contract).
    #[serde(default)]
    pub payload: Value,
    /// Who and what.
    #[serde(default)]
    pub context: CallContext,
}

impl HookRunParams {
    /// The key of the hook registration to run (`event`, or `event:id`).
    pub fn key(&self) -> String {
        crate::registration::hook_key(&self.event, self.id.as_deref())
    }
}

/// A hook's answer: `null` for "nothing to add", or an object of event-specific fields
/// (e.g. `prependContext` for `before_prompt_build`).
pub type HookResult = Option<Map<String, Value>>;

/// `command/run` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommandRunParams {
    /// The registered name (lowercase).
    pub name: String,
    /// The text after the command, for commands that accept arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// The full message text.
    #[serde(default)]
    pub command_body: String,
    /// Who sent it, where.
    #[serde(default)]
    pub context: CallContext,
}

/// A command's reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CommandResult {
    /// The reply text.
    pub text: String,
}

/// `method/call` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MethodCallParams {
    /// The full method name, `<pluginId>.<action>`.
    pub method: String,
    /// The caller's params, as sent.
    #[serde(default)]
    pub params: Value,
    /// Who is calling.
    #[serde(default)]
    pub context: CallContext,
}

/// `http/handle` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpHandleParams {
    /// The registered route path that matched.
    pub route: String,
    /// The request.
    pub request: HttpRequest,
    /// What the host knows of the caller.
    #[serde(default)]
    pub context: CallContext,
}

/// An HTTP request as the gateway received it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// `GET`, `POST`...
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The raw query string, without `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Lowercase names; repeated headers joined with `, `.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body, base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// The plugin's HTTP response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    /// False: the plugin declined; the gateway tries its next handler. Default true.
    #[serde(default = "yes")]
    pub handled: bool,
    /// Default 200.
    #[serde(default = "ok_status")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A UTF-8 body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A binary body, base64 (wins over `body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// `service/start` and `service/stop` params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServiceParams {
    /// A service this plugin registered.
    pub id: String,
}

/// `provider/call` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProviderCallParams {
    /// The capability.
    pub capability: ProviderCapability,
    /// The provider id.
    pub id: String,
    /// The capability's operation (e.g. `synthesize`, `search`).
    pub operation: String,
    /// The operation's input.
    #[serde(default)]
    pub params: Value,
    /// Who is calling.
    #[serde(default)]
    pub context: CallContext,
}

/// `channel/call` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelCallParams {
    /// The channel id.
    pub id: String,
    /// The operation (e.g. `sendText`, `listAccountIds`).
    pub operation: String,
    /// The operation's input.
    #[serde(default)]
    pub params: Value,
    /// Who is calling.
    #[serde(default)]
    pub context: CallContext,
}

/// `contextEngine/call` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContextEngineCallParams {
    /// The engine id.
    pub id: String,
    /// `ingest`, `assemble` or `compact`.
    pub operation: String,
    /// The operation's input.
    #[serde(default)]
    pub params: Value,
    /// Who is calling.
    #[serde(default)]
    pub context: CallContext,
}

// ---------------------------------------------------------------------------------
// Plugin -> host

/// `host/callMethod` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostCallMethodParams {
    /// A gateway method: one a plugin registered, or the gateway's own.
    pub method: String,
    /// Its params.
    #[serde(default)]
    pub params: Value,
    /// The context of the call the plugin is serving, passed on to the method; its
    /// `timeoutMs` bounds the request (the host caps it at the plugin's call timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CallContext>,
}

/// `host/getConfig` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostGetConfigResult {
    /// The plugin's validated config, as sent in `initialize`.
    pub config: Map<String, Value>,
    /// The config of each messaging channel the plugin's manifest declares that the
    /// operator configured (`channels.<id>`), by channel id, as written; absent when
    /// there is none.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub channels: Map<String, Value>,
    /// What the gateway shares of its own config with this plugin; absent when it
    /// shares nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Value>,
}

// ---------------------------------------------------------------------------------
// Fixture methods (conformance)

/// `fixture/echo` params and result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FixtureEchoParams {
    /// Any value; returned unchanged.
    pub value: Value,
}

/// `fixture/sleep` params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FixtureSleepParams {
    /// How long to wait before answering `{}`; a `$/cancel` ends the wait with `-32800`.
    pub ms: u64,
}

/// `fixture/progress` params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FixtureProgressParams {
    /// How many `$/progress` notifications to send (progress 1..=steps, total steps).
    pub steps: u32,
}

/// `fixture/stderr` params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FixtureStderrParams {
    /// How many bytes of text (lines of printable ASCII) to write to stderr before
    /// answering `{}`.
    pub bytes: u64,
}

/// `fixture/callHost` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FixtureCallHostParams {
    /// The method to call on the host.
    pub method: String,
    /// Its params.
    #[serde(default)]
    pub params: Value,
}

/// `fixture/callHost` result: how the host answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FixtureCallHostResult {
    /// The host's result, if it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The host's error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ErrorObject>,
}

fn yes() -> bool {
    true
}

fn ok_status() -> u16 {
    200
}

/// Parses each registration on its own, so one malformed entry does not sink the rest.
///
/// `Err` holds the index-free parts of a rejection: the kind and key when they could be
/// read, and the serde error as the reason.
pub fn parse_registrations(values: &[Value]) -> Vec<Result<Registration, RejectedRegistration>> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            serde_json::from_value::<Registration>(value.clone()).map_err(|error| {
                let kind = value
                    .get("kind")
                    .and_then(Value::as_str)
                    .and_then(RegistrationKind::from_name);
                let key = ["name", "event", "method", "path", "id"]
                    .iter()
                    .find_map(|k| value.get(*k).and_then(Value::as_str))
                    .map(str::to_owned);
                let what = value.get("kind").and_then(Value::as_str).map_or_else(
                    || "a registration needs a `kind` string".to_owned(),
                    |kind| match RegistrationKind::from_name(kind) {
                        Some(_) => format!("malformed `{kind}` registration: {error}"),
                        None => format!(
                            "unknown registration kind `{kind}`; known kinds: {}",
                            RegistrationKind::ALL
                                .map(RegistrationKind::as_str)
                                .join(", ")
                        ),
                    },
                );
                RejectedRegistration {
                    index,
                    kind,
                    key,
                    code: RejectionCode::Invalid,
                    reason: what,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every params and result type survives a trip through JSON unchanged.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &Value) {
        let typed: T =
            serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"));
        let back = serde_json::to_value(&typed).unwrap();
        let again: T = serde_json::from_value(back.clone()).unwrap();
        assert_eq!(typed, again, "{value} -> {back}");
        assert_eq!(&back, value, "the sample should be in canonical form");
    }

    #[test]
    fn every_message_type_round_trips() {
        round_trip::<InitializeParams>(&json!({
            "protocolVersions": ["1"],
            "host": {"name": "outpost", "version": "0.1.0"},
            "pluginId": "hello",
            "config": {"greeting": "hi"},
            "limits": {"maxMessageBytes": 16_777_216, "maxConcurrentRequests": 16, "shutdownTimeoutMs": 3000},
            "capabilities": {"runtime": ["host/callMethod", "host/getConfig"]},
            "hostPid": 42
        }));
        round_trip::<InitializeResult>(&json!({
            "protocolVersion": "1",
            "plugin": {"id": "hello", "name": "Hello", "version": "1.0.0"},
            "capabilities": {"fixture": true},
            "registrations": [{"kind": "service", "id": "s"}]
        }));
        round_trip::<InitializedParams>(&json!({
            "accepted": [{"index": 0, "kind": "tool", "key": "echo"}],
            "rejected": [{"index": 1, "kind": "command", "key": "help", "code": "reserved", "reason": "r"}]
        }));
        round_trip::<CancelParams>(&json!({"id": "7"}));
        round_trip::<ProgressParams>(
            &json!({"id": 7, "progress": 1.0, "total": 3.0, "message": "m"}),
        );
        round_trip::<LogParams>(
            &json!({"level": "warning", "message": "m", "logger": "l", "fields": {"k": 1}}),
        );
        round_trip::<ToolInvokeParams>(&json!({
            "name": "echo", "arguments": {"text": "hi"},
            "context": {"sessionKey": "s", "agentId": "a", "channel": "c", "accountId": "x", "senderId": "u", "isAuthorizedSender": true, "timeoutMs": 30000}
        }));
        round_trip::<ToolResult>(&json!({
            "content": [{"type": "text", "text": "t"}, {"type": "json", "json": {"a": 1}}, {"type": "image", "data": "AA==", "mimeType": "image/png"}],
            "isError": true, "details": {"d": 1}
        }));
        round_trip::<HookRunParams>(
            &json!({"event": "before_prompt_build", "payload": {"prompt": "p"}, "context": {}}),
        );
        round_trip::<HookResult>(&json!({"prependContext": "c"}));
        round_trip::<HookResult>(&json!(null));
        round_trip::<CommandRunParams>(
            &json!({"name": "ping", "args": "a b", "commandBody": "/ping a b", "context": {"senderId": "u"}}),
        );
        round_trip::<CommandResult>(&json!({"text": "pong"}));
        round_trip::<MethodCallParams>(
            &json!({"method": "hello.status", "params": {"x": 1}, "context": {}}),
        );
        round_trip::<HttpHandleParams>(&json!({
            "route": "/hello",
            "request": {"method": "POST", "path": "/hello", "query": "a=1", "headers": {"content-type": "text/plain"}, "body": "hi"},
            "context": {}
        }));
        round_trip::<HttpResponse>(
            &json!({"handled": true, "status": 201, "headers": {"x": "y"}, "bodyBase64": "AA=="}),
        );
        round_trip::<ServiceParams>(&json!({"id": "poller"}));
        round_trip::<ProviderCallParams>(
            &json!({"capability": "webSearch", "id": "g", "operation": "search", "params": {"q": 1}, "context": {}}),
        );
        round_trip::<ChannelCallParams>(
            &json!({"id": "chat", "operation": "sendText", "params": {}, "context": {}}),
        );
        round_trip::<ContextEngineCallParams>(
            &json!({"id": "e", "operation": "assemble", "params": {}, "context": {}}),
        );
        round_trip::<HostCallMethodParams>(&json!({"method": "other.status", "params": {}}));
        round_trip::<HostCallMethodParams>(
            &json!({"method": "other.status", "params": {}, "context": {"sessionKey": "s1", "timeoutMs": 500}}),
        );
        round_trip::<HostGetConfigResult>(&json!({"config": {"a": 1}}));
        round_trip::<HostGetConfigResult>(
            &json!({"config": {}, "gateway": {"agents": {"default": "main"}}}),
        );
        round_trip::<FixtureEchoParams>(&json!({"value": [1, "two"]}));
        round_trip::<FixtureSleepParams>(&json!({"ms": 10}));
        round_trip::<FixtureProgressParams>(&json!({"steps": 3}));
        round_trip::<FixtureStderrParams>(&json!({"bytes": 1_048_576}));
        round_trip::<FixtureCallHostResult>(&json!({"error": {"code": -32601, "message": "m"}}));
        round_trip::<EmptyObject>(&json!({}));
    }

    #[test]
    fn defaults_fill_optional_members() {
        let response: HttpResponse = serde_json::from_value(json!({})).unwrap();
        assert!(response.handled);
        assert_eq!(response.status, 200);
        let empty: EmptyObject = serde_json::from_value(json!({"anything": 1})).unwrap();
        assert_eq!(empty, EmptyObject {});
    }

    #[test]
    fn registrations_parse_one_by_one() {
        let values = vec![
            json!({"kind": "service", "id": "ok"}),
            json!({"kind": "tool", "name": "t"}),
            json!({"kind": "wormhole", "id": "w"}),
            json!({"id": "no-kind"}),
        ];
        let parsed = parse_registrations(&values);
        assert!(parsed[0].is_ok());
        let bad: Vec<_> = parsed.into_iter().skip(1).map(Result::unwrap_err).collect();
        assert_eq!(bad[0].kind, Some(RegistrationKind::Tool));
        assert_eq!(bad[0].key.as_deref(), Some("t"));
        assert!(bad[0].reason.contains("description"), "{}", bad[0].reason);
        assert!(
            bad[1]
                .reason
                .contains("unknown registration kind `wormhole`"),
            "{}",
            bad[1].reason
        );
        assert!(
            bad[2].reason.contains("needs a `kind`"),
            "{}",
            bad[2].reason
        );
        assert_eq!(bad.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn method_names_are_unique() {
        let mut names: Vec<_> = METHODS.iter().map(|(name, ..)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
    }
}
