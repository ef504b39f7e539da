//! What a plugin offers the gateway, declared in its `initialize` result.
//!
//! One record kind per capability of the OpenClaw plugin model. [`Registration::check`]
//! holds the rules that need nothing but the registration and the plugin id (names,
//! namespaces, reserved words); rules that need the manifest or other plugins (coverage,
//! conflicts) belong to the host.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One registration, tagged by `kind` on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Registration {
    /// An agent tool (`tool/invoke`).
    Tool(ToolRegistration),
    /// A typed lifecycle hook (`hook/run`).
    Hook(HookRegistration),
    /// A slash command answered without a model turn (`command/run`).
    Command(CommandRegistration),
    /// A gateway RPC method `<pluginId>.<action>` (`method/call`).
    GatewayMethod(GatewayMethodRegistration),
    /// An HTTP route on the gateway's server (`http/handle`).
    HttpRoute(HttpRouteRegistration),
    /// A background service (`service/start`, `service/stop`).
    Service(ServiceRegistration),
    /// A messaging channel (`channel/call`).
    Channel(ChannelRegistration),
    /// A provider of one capability (`provider/call`).
    Provider(ProviderRegistration),
    /// A context engine for the `contextEngine` slot (`contextEngine/call`).
    ContextEngine(ContextEngineRegistration),
}

/// An agent tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ToolRegistration {
    /// `^[A-Za-z0-9_-]{1,64}$` (what model APIs accept); snake_case by convention.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// A JSON Schema (an object) for the tool's `arguments`.
    pub input_schema: Value,
    /// The host may retry a call of this tool after a plugin crash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay_safe: bool,
}

/// A typed hook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HookRegistration {
    /// One of [`HOOK_EVENTS`]; others are ignored with a warning.
    pub event: String,
    /// Higher runs first; default 0. Ties run in registration order (plugins in
    /// precedence order).
    #[serde(default)]
    pub priority: i32,
    /// What the hook does, for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tells this handler from the plugin's other handlers of the same event (OpenClaw's
    /// `registrationId`): a plugin registers several handlers for one event by giving
    /// each an id, and `hook/run` names the one to run. The key becomes `event:id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `before_tool_call` and `after_tool_call` only: the tool names the handler is for
    /// (not empty, no wildcards); absent: every tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Vec<String>>,
    /// The handler's budget in milliseconds (1 to 600000). The operator's
    /// `hooks.timeouts.<event>`, then `hooks.timeoutMs`, override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl HookRegistration {
    /// A handler for `event` with priority 0 and nothing else set.
    pub fn new(event: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            priority: 0,
            description: None,
            id: None,
            matcher: None,
            timeout_ms: None,
        }
    }
}

/// The key of a hook registration: the event, or `event:id` for a handler with an id.
pub fn hook_key(event: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{event}:{id}"),
        None => event.to_owned(),
    }
}

/// A slash command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommandRegistration {
    /// Without the `/`; matched case-insensitively; `^[a-z][a-z0-9_-]*$` once
    /// lowercased; not one of [`RESERVED_COMMANDS`].
    pub name: String,
    /// Help text shown in command lists; must not be blank.
    pub description: String,
    /// Whether text after the command is passed as `args`; when false, a command with
    /// arguments does not match. Default false.
    #[serde(default)]
    pub accepts_args: bool,
    /// Only authorized senders may run it. Default true.
    #[serde(default = "yes")]
    pub require_auth: bool,
    /// Per-surface aliases (`"default"` or a provider such as `"discord"`), each under
    /// the same name rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub native_names: BTreeMap<String, String>,
    /// The host may retry this command after a plugin crash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay_safe: bool,
}

/// A gateway RPC method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct GatewayMethodRegistration {
    /// `<namespace>.<action>`: by convention the plugin's id as the namespace; not one
    /// the gateway's core owns ([`CORE_METHOD_NAMESPACES`]) nor another plugin's id.
    pub method: String,
    /// What it does, for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The host may retry a call after a plugin crash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay_safe: bool,
}

/// An HTTP route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRegistration {
    /// Starts with `/`; no query, no `..` or empty segments, no whitespace.
    pub path: String,
    /// Who authenticates the request; required.
    pub auth: RouteAuth,
    /// How `path` matches; default exact.
    #[serde(default, rename = "match")]
    pub match_kind: RouteMatch,
    /// Replace this plugin's own route with the same path and match (never another
    /// plugin's).
    #[serde(default, skip_serializing_if = "is_false")]
    pub replace_existing: bool,
}

/// Who authenticates requests on a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum RouteAuth {
    /// The gateway's normal authentication.
    Gateway,
    /// The plugin verifies requests itself (webhook signatures).
    Plugin,
}

/// How a route path matches request paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum RouteMatch {
    /// The request path equals the route path.
    #[default]
    Exact,
    /// The request path equals the route path or continues it after a `/`.
    Prefix,
}

/// A background service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistration {
    /// Unique across all plugins.
    pub id: String,
    /// What it does, for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A messaging channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelRegistration {
    /// The channel id (`channels.<id>` in the gateway config); declared in the
    /// manifest's `channels`.
    pub id: String,
    /// Labels and docs (`label`, `selectionLabel`, `docsPath`, `blurb`, `aliases`...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub meta: Value,
    /// What the channel supports (`chatTypes`, media, threads...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub capabilities: Value,
    /// The host may retry a call after a plugin crash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay_safe: bool,
}

/// A provider of one capability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProviderRegistration {
    /// Which capability contract it implements.
    pub capability: ProviderCapability,
    /// Unique per capability across all plugins; declared in the manifest.
    pub id: String,
    /// A label for pickers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The host may retry a call after a plugin crash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay_safe: bool,
}

/// A context engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContextEngineRegistration {
    /// Selected by `plugins.slots.contextEngine`.
    pub id: String,
    /// `name`, `ownsCompaction`...
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub info: Value,
}

/// The capability contracts a provider can implement, and the manifest field that
/// declares providers of each (coverage is checked by the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum ProviderCapability {
    /// Text inference (manifest `providers`).
    Text,
    /// A CLI inference backend (manifest `cliBackends`).
    CliBackend,
    /// Speech synthesis (`contracts.speechProviders`).
    Speech,
    /// Realtime transcription (`contracts.realtimeTranscriptionProviders`).
    RealtimeTranscription,
    /// Realtime voice (`contracts.realtimeVoiceProviders`).
    RealtimeVoice,
    /// Image, audio and video understanding (`contracts.mediaUnderstandingProviders`).
    MediaUnderstanding,
    /// Image generation (`contracts.imageGenerationProviders`).
    ImageGeneration,
    /// Music generation (`contracts.musicGenerationProviders`).
    MusicGeneration,
    /// Video generation (`contracts.videoGenerationProviders`).
    VideoGeneration,
    /// Web fetch (`contracts.webFetchProviders`).
    WebFetch,
    /// Web search (`contracts.webSearchProviders`).
    WebSearch,
    /// Embeddings (`contracts.embeddingProviders`).
    Embedding,
    /// Usage and quota snapshots (`contracts.usageProviders`).
    Usage,
}

impl ProviderCapability {
    /// Every capability.
    pub const ALL: [ProviderCapability; 13] = [
        Self::Text,
        Self::CliBackend,
        Self::Speech,
        Self::RealtimeTranscription,
        Self::RealtimeVoice,
        Self::MediaUnderstanding,
        Self::ImageGeneration,
        Self::MusicGeneration,
        Self::VideoGeneration,
        Self::WebFetch,
        Self::WebSearch,
        Self::Embedding,
        Self::Usage,
    ];

    /// The wire name (`"imageGeneration"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::CliBackend => "cliBackend",
            Self::Speech => "speech",
            Self::RealtimeTranscription => "realtimeTranscription",
            Self::RealtimeVoice => "realtimeVoice",
            Self::MediaUnderstanding => "mediaUnderstanding",
            Self::ImageGeneration => "imageGeneration",
            Self::MusicGeneration => "musicGeneration",
            Self::VideoGeneration => "videoGeneration",
            Self::WebFetch => "webFetch",
            Self::WebSearch => "webSearch",
            Self::Embedding => "embedding",
            Self::Usage => "usage",
        }
    }

    /// Where a manifest declares the provider ids of this capability: a top-level key
    /// (`providers`, `cliBackends`) or a key under `contracts`.
    pub const fn manifest_field(self) -> ManifestField {
        match self {
            Self::Text => ManifestField::TopLevel("providers"),
            Self::CliBackend => ManifestField::TopLevel("cliBackends"),
            Self::Speech => ManifestField::Contracts("speechProviders"),
            Self::RealtimeTranscription => {
                ManifestField::Contracts("realtimeTranscriptionProviders")
            }
            Self::RealtimeVoice => ManifestField::Contracts("realtimeVoiceProviders"),
            Self::MediaUnderstanding => ManifestField::Contracts("mediaUnderstandingProviders"),
            Self::ImageGeneration => ManifestField::Contracts("imageGenerationProviders"),
            Self::MusicGeneration => ManifestField::Contracts("musicGenerationProviders"),
            Self::VideoGeneration => ManifestField::Contracts("videoGenerationProviders"),
            Self::WebFetch => ManifestField::Contracts("webFetchProviders"),
            Self::WebSearch => ManifestField::Contracts("webSearchProviders"),
            Self::Embedding => ManifestField::Contracts("embeddingProviders"),
            Self::Usage => ManifestField::Contracts("usageProviders"),
        }
    }
}

impl fmt::Display for ProviderCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A list of ids in a plugin manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestField {
    /// A top-level array (`providers`, `channels`, `cliBackends`).
    TopLevel(&'static str),
    /// An array under `contracts` (`contracts.tools`, `contracts.speechProviders`).
    Contracts(&'static str),
}

impl fmt::Display for ManifestField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TopLevel(key) => f.write_str(key),
            Self::Contracts(key) => write!(f, "contracts.{key}"),
        }
    }
}

/// The kind of a registration, as named on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum RegistrationKind {
    /// [`Registration::Tool`].
    Tool,
    /// [`Registration::Hook`].
    Hook,
    /// [`Registration::Command`].
    Command,
    /// [`Registration::GatewayMethod`].
    GatewayMethod,
    /// [`Registration::HttpRoute`].
    HttpRoute,
    /// [`Registration::Service`].
    Service,
    /// [`Registration::Channel`].
    Channel,
    /// [`Registration::Provider`].
    Provider,
    /// [`Registration::ContextEngine`].
    ContextEngine,
}

impl RegistrationKind {
    /// Every kind, in wire order.
    pub const ALL: [RegistrationKind; 9] = [
        Self::Tool,
        Self::Hook,
        Self::Command,
        Self::GatewayMethod,
        Self::HttpRoute,
        Self::Service,
        Self::Channel,
        Self::Provider,
        Self::ContextEngine,
    ];

    /// The wire name (`"gatewayMethod"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Hook => "hook",
            Self::Command => "command",
            Self::GatewayMethod => "gatewayMethod",
            Self::HttpRoute => "httpRoute",
            Self::Service => "service",
            Self::Channel => "channel",
            Self::Provider => "provider",
            Self::ContextEngine => "contextEngine",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for RegistrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the host refused a registration; sent in `initialized.rejected[].code`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RejectionCode {
    /// Malformed: missing or wrongly typed fields, a bad name or path.
    Invalid,
    /// A name reserved by the gateway (a built-in command, a core method).
    Reserved,
    /// A gateway method in a namespace the plugin may not use: one the gateway's core
    /// owns, or another plugin's id.
    Namespace,
    /// The manifest does not declare it (`contracts.tools`, `providers`, `channels`...).
    NotDeclared,
    /// The same plugin registered the same thing twice.
    Duplicate,
    /// Another plugin registered it first (first registration wins).
    Conflict,
    /// A hook event this host does not know; ignored.
    UnknownHook,
    /// Refused by operator policy (`hooks.allowPromptInjection: false`).
    Forbidden,
    /// A code this version does not know.
    #[serde(other)]
    Other,
}

impl RejectionCode {
    /// The wire name (`"not-declared"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Reserved => "reserved",
            Self::Namespace => "namespace",
            Self::NotDeclared => "not-declared",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
            Self::UnknownHook => "unknown-hook",
            Self::Forbidden => "forbidden",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registration that breaks a rule: the code and a sentence saying what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationProblem {
    /// The kind of rule broken.
    pub code: RejectionCode,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl RegistrationProblem {
    fn new(code: RejectionCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RegistrationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

/// Slash commands the gateway keeps for itself (OpenClaw's built-in command names).
pub const RESERVED_COMMANDS: &[&str] = &[
    "activation",
    "allowlist",
    "bash",
    "btw",
    "codex",
    "commands",
    "compact",
    "config",
    "context",
    "debug",
    "diagnostics",
    "elevated",
    "exec",
    "help",
    "kill",
    "learn",
    "loop",
    "model",
    "models",
    "new",
    "queue",
    "reasoning",
    "reset",
    "restart",
    "send",
    "skill",
    "status",
    "steer",
    "stop",
    "subagents",
    "tell",
    "think",
    "usage",
    "verbose",
    "whoami",
];

/// The typed hook events a plugin may register for (OpenClaw's hook catalog), plus
/// the legacy `before_agent_start`.
pub const HOOK_EVENTS: &[&str] = &[
    "before_model_resolve",
    "agent_turn_prepare",
    "before_prompt_build",
    "before_agent_start",
    "before_agent_reply",
    "model_call_started",
    "model_call_ended",
    "llm_input",
    "llm_output",
    "before_agent_finalize",
    "agent_end",
    "before_compaction",
    "after_compaction",
    "before_reset",
    "inbound_claim",
    "channel_pairing_requested",
    "message_received",
    "message_sending",
    "reply_payload_sending",
    "message_sent",
    "before_tool_call",
    "after_tool_call",
    "tool_result_persist",
    "before_message_write",
    "session_start",
    "session_end",
    "subagent_delivery_target",
    "subagent_spawned",
    "subagent_progress",
    "subagent_ended",
    "gateway_start",
    "gateway_stop",
    "heartbeat_prompt_contribution",
    "cron_reconciled",
    "cron_changed",
    "skill_proposal_evaluate",
    "skill_proposal_changed",
    "skill_changed",
    "before_dispatch",
    "reply_dispatch",
    "before_install",
    "before_agent_run",
    "resolve_exec_env",
];

/// Hook events whose results change the prompt; `hooks.allowPromptInjection: false`
/// blocks them for a plugin.
pub const PROMPT_INJECTION_HOOKS: &[&str] = &[
    "agent_turn_prepare",
    "before_prompt_build",
    "heartbeat_prompt_contribution",
];

/// Hook events that carry conversation content (prompts, messages, model input and
/// output): a plugin not granted `hooks.allowConversationAccess` (bundled plugins have
/// it unless refused) may not register for them.
pub const CONVERSATION_HOOKS: &[&str] = &[
    "before_model_resolve",
    "agent_turn_prepare",
    "before_prompt_build",
    "before_agent_reply",
    "llm_input",
    "llm_output",
    "before_agent_finalize",
    "agent_end",
    "before_agent_run",
];

/// Hook events that accept a tool `matcher`.
pub const MATCHER_HOOKS: &[&str] = &["before_tool_call", "after_tool_call"];

/// The legacy hook that still works but deserves a warning.
pub const LEGACY_HOOKS: &[&str] = &["before_agent_start"];

/// Gateway method namespaces the gateway's core owns (`<namespace>.<action>`): a plugin
/// may not register a method in them. OpenClaw's operator-admin prefixes (`config.`,
/// `exec.`, `wizard.`, `update.`) and the core's own method families.
pub const CORE_METHOD_NAMESPACES: &[&str] = &[
    "agent", "agents", "channels", "chat", "config", "cron", "device", "exec", "gateway", "health",
    "logs", "models", "node", "plugins", "secrets", "sessions", "skills", "system", "update",
    "wizard",
];

impl Registration {
    /// The kind.
    pub const fn kind(&self) -> RegistrationKind {
        match self {
            Self::Tool(_) => RegistrationKind::Tool,
            Self::Hook(_) => RegistrationKind::Hook,
            Self::Command(_) => RegistrationKind::Command,
            Self::GatewayMethod(_) => RegistrationKind::GatewayMethod,
            Self::HttpRoute(_) => RegistrationKind::HttpRoute,
            Self::Service(_) => RegistrationKind::Service,
            Self::Channel(_) => RegistrationKind::Channel,
            Self::Provider(_) => RegistrationKind::Provider,
            Self::ContextEngine(_) => RegistrationKind::ContextEngine,
        }
    }

    /// The name that identifies it within its kind: the tool, command (lowercased),
    /// method, service, channel or engine name; the hook event; `capability:id` for a
    /// provider; `path` plus ` (prefix)` for a prefix route.
    pub fn key(&self) -> String {
        match self {
            Self::Tool(t) => t.name.clone(),
            Self::Hook(h) => hook_key(&h.event, h.id.as_deref()),
            Self::Command(c) => c.name.trim().to_lowercase(),
            Self::GatewayMethod(m) => m.method.clone(),
            Self::HttpRoute(r) => match r.match_kind {
                RouteMatch::Exact => r.path.clone(),
                RouteMatch::Prefix => format!("{} (prefix)", r.path),
            },
            Self::Service(s) => s.id.clone(),
            Self::Channel(c) => c.id.clone(),
            Self::Provider(p) => format!("{}:{}", p.capability, p.id),
            Self::ContextEngine(e) => e.id.clone(),
        }
    }

    /// Whether the host may retry a call to it after the plugin crashed.
    pub const fn replay_safe(&self) -> bool {
        match self {
            Self::Tool(t) => t.replay_safe,
            Self::Command(c) => c.replay_safe,
            Self::GatewayMethod(m) => m.replay_safe,
            Self::Channel(c) => c.replay_safe,
            Self::Provider(p) => p.replay_safe,
            Self::Hook(_) | Self::HttpRoute(_) | Self::Service(_) | Self::ContextEngine(_) => false,
        }
    }

    /// The rules that need only the registration and the id of the plugin making it.
    ///
    /// An unknown hook event is reported as [`RejectionCode::UnknownHook`]: the host
    /// ignores such a hook with a warning rather than failing the plugin.
    /// `_plugin_id` is the registering plugin's id; no rule here depends on it any more
    /// (a gateway method's namespace is free, see [`CORE_METHOD_NAMESPACES`]).
    pub fn check(&self, _plugin_id: &str) -> Result<(), RegistrationProblem> {
        use RejectionCode::{Invalid, Reserved, UnknownHook};
        let invalid = |reason: String| Err(RegistrationProblem::new(Invalid, reason));
        match self {
            Self::Tool(t) => {
                if !is_tool_name(&t.name) {
                    return invalid(format!(
                        "tool name {:?} must be 1 to 64 ASCII letters, digits, `_` or `-`",
                        t.name
                    ));
                }
                if t.description.trim().is_empty() {
                    return invalid(format!(
                        "tool `{}` needs a description for the model",
                        t.name
                    ));
                }
                if !t.input_schema.is_object() {
                    return invalid(format!(
                        "tool `{}`: `inputSchema` must be a JSON Schema object, e.g. {{\"type\":\"object\"}}",
                        t.name
                    ));
                }
            }
            Self::Hook(h) => {
                if !HOOK_EVENTS.contains(&h.event.as_str()) {
                    return Err(RegistrationProblem::new(
                        UnknownHook,
                        format!("`{}` is not a known hook event; it is ignored", h.event),
                    ));
                }
                if let Some(id) = &h.id {
                    check_id("hook id", id)?;
                }
                if let Some(matcher) = &h.matcher {
                    if !MATCHER_HOOKS.contains(&h.event.as_str()) {
                        return invalid(format!(
                            "hook `{}`: `matcher` is only for {}; remove it",
                            h.event,
                            MATCHER_HOOKS.join(" and ")
                        ));
                    }
                    if matcher.is_empty() || !matcher.iter().all(|tool| is_tool_name(tool)) {
                        return invalid(format!(
                            "hook `{}`: `matcher` must list tool names (no wildcards or blanks); omit it to match every tool",
                            h.event
                        ));
                    }
                }
                if h.timeout_ms.is_some_and(|ms| !(1..=600_000).contains(&ms)) {
                    return invalid(format!(
                        "hook `{}`: `timeoutMs` must be from 1 to 600000",
                        h.event
                    ));
                }
            }
            Self::Command(c) => {
                check_command_name(&c.name)?;
                for (surface, alias) in &c.native_names {
                    check_command_name(alias).map_err(|p| RegistrationProblem {
                        reason: format!("native alias `{surface}` of `/{}`: {}", c.name, p.reason),
                        ..p
                    })?;
                }
                if c.description.trim().is_empty() {
                    return invalid(format!("command `/{}` needs a description", c.name));
                }
            }
            Self::GatewayMethod(m) => check_method_name(&m.method)?,
            Self::HttpRoute(r) => check_route_path(&r.path)?,
            Self::Service(s) => check_id("service", &s.id)?,
            Self::Channel(c) => check_id("channel", &c.id)?,
            Self::Provider(p) => check_id("provider", &p.id)?,
            Self::ContextEngine(e) => {
                check_id("context engine", &e.id)?;
                if e.id == "legacy" {
                    return Err(RegistrationProblem::new(
                        Reserved,
                        "context engine id `legacy` is the gateway's built-in engine; pick another id",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether two routes can match the same request path.
pub fn routes_overlap(a: &HttpRouteRegistration, b: &HttpRouteRegistration) -> bool {
    let covers = |prefix: &str, path: &str| {
        let prefix = prefix.trim_end_matches('/');
        path == prefix
            || prefix.is_empty()
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    match (a.match_kind, b.match_kind) {
        (RouteMatch::Exact, RouteMatch::Exact) => a.path == b.path,
        (RouteMatch::Prefix, RouteMatch::Exact) => covers(&a.path, &b.path),
        (RouteMatch::Exact, RouteMatch::Prefix) => covers(&b.path, &a.path),
        (RouteMatch::Prefix, RouteMatch::Prefix) => {
            covers(&a.path, &b.path) || covers(&b.path, &a.path)
        }
    }
}

/// Whether a route matches a request path.
pub fn route_matches(route: &HttpRouteRegistration, path: &str) -> bool {
    match route.match_kind {
        RouteMatch::Exact => route.path == path,
        RouteMatch::Prefix => {
            let prefix = route.path.trim_end_matches('/');
            path == route.path
                || prefix.is_empty()
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A gateway method is `<namespace>.<action>`. The plugin's own id as the namespace is
/// the seeds' convention, not a rule: real plugins use other prefixes (`wiki.*`,
/// `memory.*`, `voicecall.*`). Namespaces the gateway's core owns are refused; whether
/// another plugin owns the name is the host's check.
fn check_method_name(method: &str) -> Result<(), RegistrationProblem> {
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_-".contains(ch))
    };
    let Some((namespace, action)) = method.split_once('.') else {
        return Err(RegistrationProblem::new(
            RejectionCode::Invalid,
            format!(
                "gateway method `{method}` has no namespace; name it `<namespace>.<action>`, e.g. `<pluginId>.status`"
            ),
        ));
    };
    if !valid(namespace) || !action.split('.').all(valid) {
        return Err(RegistrationProblem::new(
            RejectionCode::Invalid,
            format!(
                "gateway method `{method}`: each dot-separated part must be non-empty ASCII letters, digits, `_` or `-`"
            ),
        ));
    }
    if CORE_METHOD_NAMESPACES.contains(&namespace) {
        return Err(RegistrationProblem::new(
            RejectionCode::Namespace,
            format!(
                "gateway method `{method}` is in the `{namespace}.` namespace, which the gateway's core owns; use your plugin id or another prefix"
            ),
        ));
    }
    Ok(())
}

fn check_command_name(name: &str) -> Result<(), RegistrationProblem> {
    let lower = name.trim().to_lowercase();
    let mut chars = lower.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !well_formed {
        return Err(RegistrationProblem::new(
            RejectionCode::Invalid,
            format!(
                "command name {name:?} must start with a letter and hold only letters, digits, `-` and `_`"
            ),
        ));
    }
    if RESERVED_COMMANDS.contains(&lower.as_str()) {
        return Err(RegistrationProblem::new(
            RejectionCode::Reserved,
            format!("`/{lower}` is a built-in gateway command; pick another name"),
        ));
    }
    Ok(())
}

fn check_route_path(path: &str) -> Result<(), RegistrationProblem> {
    let problem = |what: &str| {
        Err(RegistrationProblem::new(
            RejectionCode::Invalid,
            format!("route path {path:?} {what}"),
        ))
    };
    if !path.starts_with('/') {
        return problem("must start with `/`");
    }
    if path.contains(['?', '#']) {
        return problem("must not contain a query or fragment");
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return problem("must not contain whitespace or control characters");
    }
    if path.len() > 1
        && path[1..]
            .trim_end_matches('/')
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return problem("must not contain empty, `.` or `..` segments");
    }
    Ok(())
}

fn check_id(what: &str, id: &str) -> Result<(), RegistrationProblem> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RegistrationProblem::new(
            RejectionCode::Invalid,
            format!("{what} id {id:?} must be 1 to 128 ASCII letters, digits or `._-/:@`"),
        ))
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn registration(value: Value) -> Registration {
        serde_json::from_value(value).unwrap()
    }

    fn problem(value: Value) -> Option<RejectionCode> {
        registration(value).check("acme").err().map(|p| p.code)
    }

    #[test]
    fn every_kind_parses_with_defaults() {
        let cases = [
            json!({"kind": "tool", "name": "echo", "description": "d", "inputSchema": {"type": "object"}}),
            json!({"kind": "hook", "event": "before_prompt_build"}),
            json!({"kind": "command", "name": "ping", "description": "d"}),
            json!({"kind": "gatewayMethod", "method": "acme.status"}),
            json!({"kind": "httpRoute", "path": "/acme/hook", "auth": "plugin"}),
            json!({"kind": "service", "id": "poller"}),
            json!({"kind": "channel", "id": "acmechat"}),
            json!({"kind": "provider", "capability": "speech", "id": "acme"}),
            json!({"kind": "contextEngine", "id": "lossless"}),
        ];
        for (case, kind) in cases.into_iter().zip(RegistrationKind::ALL) {
            let r = registration(case.clone());
            assert_eq!(r.kind(), kind);
            assert_eq!(r.check("acme"), Ok(()), "{case}");
            // Round trip: defaults are omitted or explicit, never changed.
            let back: Registration =
                serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
        let Registration::Command(c) =
            registration(json!({"kind": "command", "name": "x", "description": "d"}))
        else {
            unreachable!()
        };
        assert!(!c.accepts_args && c.require_auth);
    }

    #[test]
    fn rules_that_need_no_context() {
        let cases: &[(Value, Option<RejectionCode>)] = &[
            (
                json!({"kind": "tool", "name": "has space", "description": "d", "inputSchema": {}}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "tool", "name": "x".repeat(65), "description": "d", "inputSchema": {}}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "tool", "name": "ok", "description": " ", "inputSchema": {}}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "tool", "name": "ok", "description": "d", "inputSchema": true}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "hook", "event": "on_tuesday"}),
                Some(RejectionCode::UnknownHook),
            ),
            (
                json!({"kind": "command", "name": "Status", "description": "d"}),
                Some(RejectionCode::Reserved),
            ),
            (
                json!({"kind": "command", "name": "MyStatus", "description": "d"}),
                None,
            ),
            (
                json!({"kind": "command", "name": "9lives", "description": "d"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "command", "name": "ok", "description": "d", "nativeNames": {"default": "help"}}),
                Some(RejectionCode::Reserved),
            ),
            (
                json!({"kind": "command", "name": "ok", "description": ""}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "gatewayMethod", "method": "wiki.search"}),
                None,
            ),
            (
                json!({"kind": "gatewayMethod", "method": "voicecall.start"}),
                None,
            ),
            (
                json!({"kind": "gatewayMethod", "method": "config.set"}),
                Some(RejectionCode::Namespace),
            ),
            (
                json!({"kind": "gatewayMethod", "method": "sessions.list"}),
                Some(RejectionCode::Namespace),
            ),
            (
                json!({"kind": "gatewayMethod", "method": "status"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "gatewayMethod", "method": "acme..x"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "gatewayMethod", "method": "acme."}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "gatewayMethod", "method": "acme.calls.list"}),
                None,
            ),
            (
                json!({"kind": "httpRoute", "path": "acme", "auth": "plugin"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "httpRoute", "path": "/a/../b", "auth": "plugin"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "httpRoute", "path": "/a?b=1", "auth": "plugin"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "httpRoute", "path": "/a//b", "auth": "plugin"}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "httpRoute", "path": "/", "auth": "gateway", "match": "prefix"}),
                None,
            ),
            (
                json!({"kind": "service", "id": ""}),
                Some(RejectionCode::Invalid),
            ),
            (
                json!({"kind": "contextEngine", "id": "legacy"}),
                Some(RejectionCode::Reserved),
            ),
        ];
        for (case, expected) in cases {
            assert_eq!(&problem(case.clone()), expected, "{case}");
        }
    }

    #[test]
    fn a_route_without_auth_or_with_an_unknown_capability_does_not_parse() {
        assert!(
            serde_json::from_value::<Registration>(json!({"kind": "httpRoute", "path": "/x"}))
                .is_err()
        );
        let error = serde_json::from_value::<Registration>(
            json!({"kind": "provider", "capability": "telepathy", "id": "x"}),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("telepathy"), "{error}");
    }

    #[test]
    fn route_overlap_follows_segments() {
        let route = |path: &str, prefix: bool| HttpRouteRegistration {
            path: path.into(),
            auth: RouteAuth::Plugin,
            match_kind: if prefix {
                RouteMatch::Prefix
            } else {
                RouteMatch::Exact
            },
            replace_existing: false,
        };
        assert!(routes_overlap(&route("/a", true), &route("/a/b", false)));
        assert!(routes_overlap(&route("/a/b", false), &route("/a", true)));
        assert!(!routes_overlap(&route("/a", true), &route("/ab", false)));
        assert!(routes_overlap(&route("/a", true), &route("/a/b", true)));
        assert!(!routes_overlap(&route("/a", false), &route("/a/b", false)));
        assert!(routes_overlap(
            &route("/", true),
            &route("/anything", false)
        ));
        assert!(route_matches(&route("/a/", true), "/a/b"));
        assert!(!route_matches(&route("/a", true), "/ab"));
    }

    #[test]
    fn keys_identify_within_a_kind() {
        assert_eq!(
            registration(json!({"kind": "command", "name": " MyCmd ", "description": "d"})).key(),
            "mycmd"
        );
        assert_eq!(
            registration(json!({"kind": "provider", "capability": "webSearch", "id": "g"})).key(),
            "webSearch:g"
        );
        assert_eq!(
            registration(
                json!({"kind": "httpRoute", "path": "/p", "auth": "plugin", "match": "prefix"})
            )
            .key(),
            "/p (prefix)"
        );
    }

    #[test]
    fn reserved_names_are_sorted_lowercase_and_unique() {
        let mut sorted = RESERVED_COMMANDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, RESERVED_COMMANDS);
        for hook in PROMPT_INJECTION_HOOKS.iter().chain(LEGACY_HOOKS) {
            assert!(HOOK_EVENTS.contains(hook));
        }
    }
}
