//! The config file: OpenClaw's `plugins` block plus Outpost's own `outpost` block.
//!
//! Only a file that cannot be read or parsed is a hard error ([`ConfigError`]); every
//! other problem becomes a [`Diagnostic`] so `outpost plugins validate` can list them all
//! at once. A key that is wrong is ignored after its diagnostic, as if it were absent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::diagnostic::{Code, Diagnostic, index_path, join_path};
use super::manifest::PluginKind;
use super::text::{self, ReadError, type_name};
use crate::launch::RunAs;
use crate::policy::SupervisionPolicy;

/// The default config file name, looked up in the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "outpost.json5";
/// The default manifest file name in a plugin root.
pub const DEFAULT_MANIFEST_NAME: &str = "openclaw.plugin.json";
/// The default address of the gateway API.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:7777";
/// The largest config file read, 4 MiB: far beyond any real config, small enough that
/// a wrong path (a log file, a device) fails fast.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// A config file that cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not exist.
    #[error(
        "config file {} does not exist; pass --config FILE or create it (docs/operators.md has an example)",
        path.display()
    )]
    NotFound {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file cannot be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is too large or not UTF-8.
    #[error("config file {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not valid JSON5.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The file holds JSON5 that is not an object.
    #[error("config file {}: expected an object at the top level, found {found}", path.display())]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// What it holds instead.
        found: &'static str,
    },
}

/// The parsed config file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The config file, absolute.
    pub path: PathBuf,
    /// Its directory: relative paths in the file resolve against it.
    pub dir: PathBuf,
    /// OpenClaw's `plugins` block, normalised.
    pub plugins: PluginsConfig,
    /// Outpost's own `outpost` block, with defaults filled in.
    pub outpost: OutpostSettings,
    /// OpenClaw's `channels` block: one entry per channel id (normalised), read by
    /// the plugin that declares the channel.
    pub channels: BTreeMap<String, ChannelConfig>,
}

/// One `channels.<id>`: the config of a messaging channel, owned by the plugin whose
/// manifest declares the channel id.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ChannelConfig {
    /// The key as written in the file.
    pub key: String,
    /// `enabled`: true turns the channel (and the bundled plugin declaring it) on,
    /// false off; absent: a configured channel counts as on.
    pub enabled: Option<bool>,
    /// The whole `channels.<id>` value, handed to the plugin as it is written.
    pub value: Value,
}

impl ChannelConfig {
    /// Whether the channel asks for its plugin: `enabled: true`, or configured without
    /// `enabled: false`.
    pub fn wants_plugin(&self) -> bool {
        self.enabled != Some(false)
    }
}

/// OpenClaw's `plugins` block, normalised as OpenClaw does: ids in `allow`, `deny` and
/// `entries` trimmed and lowercased.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PluginsConfig {
    /// `plugins.enabled` (default true): false disables every plugin.
    pub enabled: bool,
    /// `plugins.allow`: when non-empty, only these ids may be enabled.
    pub allow: Vec<String>,
    /// `plugins.deny`: never enabled, whatever else says.
    pub deny: Vec<String>,
    /// `plugins.load.paths`, resolved against the config file's directory.
    pub load_paths: Vec<LoadPath>,
    /// `plugins.slots`.
    pub slots: Slots,
    /// `plugins.entries`, by normalised id.
    pub entries: BTreeMap<String, PluginEntry>,
}

/// One `plugins.load.paths` entry.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoadPath {
    /// As written.
    pub raw: String,
    /// Resolved (`~` expanded, relative to the config file's directory).
    pub path: PathBuf,
}

/// `plugins.slots`: exclusive categories, one plugin each.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Slots {
    /// `plugins.slots.memory`.
    pub memory: Slot,
    /// `plugins.slots.contextEngine`.
    pub context_engine: Slot,
}

/// What a slot selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Slot {
    /// Not set: OpenClaw's default for the slot ([`SlotKey::default_id`]).
    #[default]
    Default,
    /// `"none"`: no plugin of this kind is enabled.
    None,
    /// A plugin id (trimmed, case kept: OpenClaw compares slot ids exactly).
    Plugin(String),
}

impl Slots {
    /// The selection of one slot.
    pub fn get(&self, key: SlotKey) -> &Slot {
        match key {
            SlotKey::Memory => &self.memory,
            SlotKey::ContextEngine => &self.context_engine,
        }
    }

    /// The plugin id a slot selects (its default when unset), or `None` for `"none"`.
    pub fn selected(&self, key: SlotKey) -> Option<&str> {
        match self.get(key) {
            Slot::Default => Some(key.default_id()),
            Slot::None => None,
            Slot::Plugin(id) => Some(id),
        }
    }
}

/// The exclusive slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKey {
    /// `plugins.slots.memory`, for plugins of kind `memory`.
    Memory,
    /// `plugins.slots.contextEngine`, for plugins of kind `context-engine`.
    ContextEngine,
}

impl SlotKey {
    /// Both slots.
    pub const ALL: [Self; 2] = [Self::Memory, Self::ContextEngine];

    /// The key under `plugins.slots`.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::ContextEngine => "contextEngine",
        }
    }

    /// The plugin kind the slot is for.
    pub fn kind(self) -> PluginKind {
        match self {
            Self::Memory => PluginKind::Memory,
            Self::ContextEngine => PluginKind::ContextEngine,
        }
    }

    /// OpenClaw's default selection: `memory-core` for memory, the built-in `legacy`
    /// engine for the context engine.
    pub fn default_id(self) -> &'static str {
        match self {
            Self::Memory => "memory-core",
            Self::ContextEngine => "legacy",
        }
    }

    /// An id the slot accepts without a plugin behind it (the built-in engine).
    pub(crate) fn is_built_in(self, id: &str) -> bool {
        self == Self::ContextEngine && id == "legacy"
    }
}

/// One `plugins.entries.<id>`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PluginEntry {
    /// The key as written in the file.
    pub key: String,
    /// `enabled`: true enables, false disables; absent leaves it to the other rules.
    pub enabled: Option<bool>,
    /// `config`: the plugin's own config, validated against its `configSchema`.
    pub config: Option<Map<String, Value>>,
    /// `hooks.allowPromptInjection` (default: allowed).
    pub allow_prompt_injection: Option<bool>,
    /// `hooks.allowConversationAccess`.
    pub allow_conversation_access: Option<bool>,
    /// `hooks.timeoutMs`, when valid.
    pub hook_timeout_ms: Option<u64>,
    /// `hooks.timeouts.<event>`, the valid ones.
    pub hook_timeouts: BTreeMap<String, u64>,
    /// The entry is exactly `{ enabled: false }`: OpenClaw's "uninstalled" marker, which
    /// is never reported as stale.
    pub disable_marker: bool,
}

/// The `outpost` block, defaults filled in.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OutpostSettings {
    /// `outpost.workspace`: the workspace whose `.openclaw/extensions` is scanned.
    /// Default: the config file's directory.
    pub workspace: PathBuf,
    /// `outpost.globalDir`: the user's extensions. Default `~/.openclaw/extensions`;
    /// `None` when `HOME` is unset.
    pub global_dir: Option<PathBuf>,
    /// `outpost.bundledDir`: plugins shipped with Outpost. `None` when no default exists.
    pub bundled_dir: Option<PathBuf>,
    /// `outpost.manifestName` (default `openclaw.plugin.json`).
    pub manifest_name: String,
    /// `outpost.binPath`: directories searched before `PATH` for bare command names.
    pub bin_path: Vec<PathBuf>,
    /// `outpost.defaults`: a supervision policy layer for every plugin; `None` when it
    /// is malformed (every plugin then fails to get a policy, and says why).
    pub defaults: Option<Value>,
    /// `outpost.plugins.<id>`: operator overrides, by normalised id.
    pub plugins: BTreeMap<String, PluginOverride>,
    /// `outpost.api.listen` (default `127.0.0.1:7777`).
    pub api_listen: SocketAddr,
    /// `outpost.api.token`: the bearer token of the gateway API (`OUTPOST_API_TOKEN`
    /// wins over it). `None`: read or generated as `outpost serve` documents.
    pub api_token: Option<String>,
    /// `outpost.api.tokenFile`: where `outpost serve` writes a generated token and
    /// clients read it. `None`: the default location (docs/gateway-api.md).
    pub api_token_file: Option<PathBuf>,
    /// `outpost.api.registryFile`: where `outpost serve` keeps a copy of the registry
    /// for clients that cannot wait for the API (the OpenClaw bridge at load). `None`:
    /// the default location, beside the token file.
    pub api_registry_file: Option<PathBuf>,
    /// `outpost.http.listen`: where plugin HTTP routes are served. `None` (the
    /// default): they are not served.
    pub http_listen: Option<SocketAddr>,
    /// `outpost.http.maxBodyBytes`: the largest request body a plugin route accepts
    /// (default 1 MiB).
    pub http_max_body_bytes: u64,
    /// `outpost.metrics.sampleMs`: how often each plugin's memory and CPU are sampled
    /// (default 5000; 0 turns sampling off).
    pub metrics_sample_ms: u64,
    /// `outpost.sandbox`: how every plugin is confined unless its
    /// `outpost.plugins.<id>.sandbox` says otherwise.
    pub sandbox: SandboxSettings,
}

/// `outpost.sandbox`, defaults filled in (docs/isolation.md).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxSettings {
    /// `contain`: each plugin in its own PID and mount namespaces. Default true.
    pub contain: bool,
    /// `filesystem`: the Landlock filesystem sandbox. Default true.
    pub filesystem: bool,
    /// `user`: the unprivileged user plugins run as when the supervisor runs as root.
    pub user: Option<RunAs>,
    /// `stateDir`: the directory under which each plugin gets its private state
    /// directory (`<stateDir>/<id>`). Default: `<temp dir>/outpost-<uid>`.
    pub state_dir: Option<PathBuf>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            contain: true,
            filesystem: true,
            user: None,
            state_dir: None,
        }
    }
}

/// `outpost.plugins.<id>.sandbox`: one plugin's departures from `outpost.sandbox`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxOverride {
    /// `contain`, when set.
    pub contain: Option<bool>,
    /// `filesystem`, when set: `false` is the escape hatch for a plugin that cannot
    /// run confined.
    pub filesystem: Option<bool>,
    /// `read`: paths the plugin may read beyond its root and its runtime.
    pub read: Vec<PathBuf>,
    /// `write`: paths the plugin may write beyond its state directory.
    pub write: Vec<PathBuf>,
    /// `user`, when set.
    pub user: Option<RunAs>,
}

/// The default of `outpost.http.maxBodyBytes`.
pub const DEFAULT_HTTP_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// The default of `outpost.metrics.sampleMs`.
pub const DEFAULT_METRICS_SAMPLE_MS: u64 = 5000;

/// `outpost.plugins.<id>`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PluginOverride {
    /// The key as written in the file.
    pub key: String,
    /// Environment the operator grants the plugin.
    pub env: EnvGrant,
    /// The supervision policy keys (`timeouts`, `health`, `restart`, `stop`, `limits`);
    /// `None` when this override is malformed (the plugin then fails to get a policy).
    pub policy: Option<Value>,
    /// `hostMethods`: the gateway methods the plugin may call through
    /// `host/callMethod`, exact names or `prefix.*` patterns (`*`: any). Default: none.
    pub host_methods: Vec<String>,
    /// `allowCatchAllRoute`: the plugin may register a prefix route on `/`. Default
    /// false.
    pub allow_catch_all_route: bool,
    /// `sandbox`: how this plugin is confined, over `outpost.sandbox`.
    pub sandbox: SandboxOverride,
}

/// Environment granted to a plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EnvGrant {
    /// Variables copied by name from the supervisor's environment.
    pub passthrough: Vec<String>,
    /// Variables set to fixed values.
    pub set: BTreeMap<String, String>,
}

/// Values that depend on the machine rather than on the file.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    pub(crate) home: Option<PathBuf>,
    pub(crate) bundled_dir: Option<PathBuf>,
}

/// The keys of a supervision policy layer.
pub(crate) const POLICY_KEYS: [&str; 5] = ["timeouts", "health", "restart", "stop", "limits"];

/// Reads and normalises the config file at `path`.
pub(crate) fn read(path: &Path, host: &Host) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let path = std::path::absolute(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = text::read_bounded(&path, MAX_CONFIG_BYTES).map_err(|error| match error {
        ReadError::Io(source) if source.kind() == std::io::ErrorKind::NotFound => {
            ConfigError::NotFound { path: path.clone() }
        }
        ReadError::Io(source) => ConfigError::Read {
            path: path.clone(),
            source,
        },
        ReadError::TooLarge { .. } => ConfigError::Unreadable {
            path: path.clone(),
            reason: format!("{error}; is this really the config file?"),
        },
        ReadError::NotAFile | ReadError::NotUtf8 => ConfigError::Unreadable {
            path: path.clone(),
            reason: error.to_string(),
        },
    })?;
    let value = text::parse_json5(&text).map_err(|error| ConfigError::Syntax {
        path: path.clone(),
        line: error.line,
        column: error.column,
        message: error.message,
    })?;
    let Value::Object(root) = value else {
        return Err(ConfigError::NotAnObject {
            found: type_name(&value),
            path,
        });
    };
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut reader = Reader {
        file: &path,
        dir: &dir,
        home: host.home.as_deref(),
        diagnostics: Vec::new(),
    };
    let ignored: Vec<&str> = root
        .keys()
        .map(String::as_str)
        .filter(|key| !matches!(*key, "plugins" | "outpost" | "channels"))
        .collect();
    if !ignored.is_empty() {
        let list = ignored.join(", ");
        reader.diagnostics.push(
            Diagnostic::advisory(
                Code::IgnoredKey,
                format!(
                    "top-level keys ignored: {list} (Outpost reads only `plugins`, `channels` and `outpost`)"
                ),
            )
            .file(&path),
        );
    }
    let plugins = reader.plugins(root.get("plugins"));
    let outpost = reader.outpost(root.get("outpost"), host);
    let channels = reader.channels(root.get("channels"));
    let diagnostics = reader.diagnostics;
    Ok((
        Config {
            path,
            dir,
            plugins,
            outpost,
            channels,
        },
        diagnostics,
    ))
}

/// Walks the config value, collecting diagnostics.
struct Reader<'a> {
    file: &'a Path,
    dir: &'a Path,
    home: Option<&'a Path>,
    diagnostics: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, code: Code, path: &str, message: impl Into<String>) {
        self.diagnostics.push(
            Diagnostic::error(code, message)
                .file(self.file)
                .path_and_key(path),
        );
    }

    fn warning(&mut self, code: Code, path: &str, message: impl Into<String>) {
        self.diagnostics.push(
            Diagnostic::warning(code, message)
                .file(self.file)
                .path_and_key(path),
        );
    }

    /// `channels`: each member an object; which ids are known is decided after
    /// discovery (a manifest must declare the channel).
    fn channels(&mut self, value: Option<&Value>) -> BTreeMap<String, ChannelConfig> {
        let mut channels = BTreeMap::new();
        let Some(object) = self.object(value, "channels") else {
            return channels;
        };
        for (key, value) in object {
            let path = join_path("channels", key);
            let enabled = match value {
                Value::Object(members) => {
                    self.bool(members.get("enabled"), &join_path(&path, "enabled"))
                }
                Value::Null => continue,
                other => {
                    self.wrong_type(&path, "an object", other);
                    continue;
                }
            };
            let id = normalize_id(key);
            if let Some(ChannelConfig { key: first, .. }) = channels.get(&id) {
                self.warning(
                    Code::DuplicateEntry,
                    &path,
                    format!("`{key}` and `{first}` both name channel `{id}` (channel ids are not case-sensitive); this one wins"),
                );
            }
            channels.insert(
                id,
                ChannelConfig {
                    key: key.clone(),
                    enabled,
                    value: value.clone(),
                },
            );
        }
        channels
    }

    /// Reports every key of `object` not in `known`, with a suggestion when one is close.
    fn unknown_keys(&mut self, object: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in object.keys() {
            if !known.contains(&key.as_str()) {
                let message = unknown_key_message(key, path, known);
                self.error(Code::UnknownKey, &join_path(path, key), message);
            }
        }
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.error(
            Code::InvalidValue,
            path,
            format!("expected {expected}, found {}", type_name(found)),
        );
    }

    fn object<'v>(
        &mut self,
        value: Option<&'v Value>,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value? {
            Value::Object(object) => Some(object),
            Value::Null => None,
            other => {
                self.wrong_type(path, "an object", other);
                None
            }
        }
    }

    fn bool(&mut self, value: Option<&Value>, path: &str) -> Option<bool> {
        match value? {
            Value::Bool(flag) => Some(*flag),
            other => {
                self.wrong_type(path, "true or false", other);
                None
            }
        }
    }

    fn string<'v>(&mut self, value: Option<&'v Value>, path: &str) -> Option<&'v str> {
        match value? {
            Value::String(text) => Some(text),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    fn strings<'v>(&mut self, value: Option<&'v Value>, path: &str) -> Vec<&'v str> {
        let Some(value) = value else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.wrong_type(path, "an array of strings", value);
            return Vec::new();
        };
        let mut strings = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(text) => strings.push(text.as_str()),
                other => self.wrong_type(&index_path(path, index), "a string", other),
            }
        }
        strings
    }

    fn positive_integer(&mut self, value: Option<&Value>, path: &str, max: u64) {
        if let Some(value) = value
            && !value
                .as_u64()
                .is_some_and(|number| (1..=max).contains(&number))
        {
            self.error(
                Code::InvalidValue,
                path,
                format!("expected an integer from 1 to {max}, found {value}"),
            );
        }
    }

    /// An IP address and port; an advisory when it is not loopback.
    fn address(&mut self, value: Option<&Value>, path: &str) -> Option<SocketAddr> {
        let text = self.string(value, path)?;
        let Ok(address) = text.parse::<SocketAddr>() else {
            self.error(
                Code::InvalidValue,
                path,
                format!("`{text}` is not an IP address and port such as {DEFAULT_API_LISTEN}"),
            );
            return None;
        };
        if !address.ip().is_loopback() {
            self.diagnostics.push(
                Diagnostic::advisory(
                    Code::InvalidValue,
                    format!(
                        "{path} is {address}, beyond loopback: anyone who reaches it needs only the bearer token"
                    ),
                )
                .file(self.file)
                .path_and_key(path),
            );
        }
        Some(address)
    }

    /// A path from the file: `~/` expanded, relative paths joined to the file's directory.
    fn resolve(&self, raw: &str) -> PathBuf {
        resolve_path(raw, self.dir, self.home)
    }

    fn plugins(&mut self, value: Option<&Value>) -> PluginsConfig {
        let mut plugins = PluginsConfig {
            enabled: true,
            allow: Vec::new(),
            deny: Vec::new(),
            load_paths: Vec::new(),
            slots: Slots::default(),
            entries: BTreeMap::new(),
        };
        let Some(block) = self.object(value, "plugins") else {
            return plugins;
        };
        self.unknown_keys(
            block,
            "plugins",
            &[
                "enabled", "allow", "deny", "load", "slots", "entries", "installs",
            ],
        );
        plugins.enabled = self
            .bool(block.get("enabled"), "plugins.enabled")
            .unwrap_or(true);
        plugins.allow = self.id_list(block.get("allow"), "plugins.allow");
        plugins.deny = self.id_list(block.get("deny"), "plugins.deny");
        if block.contains_key("installs") {
            self.warning(
                Code::IgnoredKey,
                "plugins.installs",
                "ignored: OpenClaw retired `plugins.installs` (install records live in its plugin index now)",
            );
        }
        if let Some(load) = self.object(block.get("load"), "plugins.load") {
            self.unknown_keys(load, "plugins.load", &["paths"]);
            for raw in self.strings(load.get("paths"), "plugins.load.paths") {
                let trimmed = raw.trim();
                if !trimmed.is_empty() {
                    plugins.load_paths.push(LoadPath {
                        raw: raw.to_owned(),
                        path: self.resolve(trimmed),
                    });
                }
            }
        }
        if let Some(slots) = self.object(block.get("slots"), "plugins.slots") {
            self.unknown_keys(slots, "plugins.slots", &["memory", "contextEngine"]);
            for key in SlotKey::ALL {
                let path = format!("plugins.slots.{}", key.config_key());
                let slot = match self
                    .string(slots.get(key.config_key()), &path)
                    .map(str::trim)
                {
                    None | Some("") => Slot::Default,
                    Some(id) if id.eq_ignore_ascii_case("none") => Slot::None,
                    Some(id) => Slot::Plugin(id.to_owned()),
                };
                match key {
                    SlotKey::Memory => plugins.slots.memory = slot,
                    SlotKey::ContextEngine => plugins.slots.context_engine = slot,
                }
            }
        }
        if let Some(entries) = self.object(block.get("entries"), "plugins.entries") {
            for (key, value) in entries {
                let path = join_path("plugins.entries", key);
                let id = normalize_id(key);
                if id.is_empty() {
                    self.error(Code::InvalidValue, &path, "a plugin id cannot be blank");
                    continue;
                }
                let entry = self.entry(key, value, &path);
                if let Some(previous) = plugins.entries.insert(id.clone(), entry) {
                    self.warning(
                        Code::DuplicateEntry,
                        &path,
                        format!(
                            "`{key}` and `{}` both name plugin `{id}` (ids are not case-sensitive); this one wins",
                            previous.key
                        ),
                    );
                }
            }
        }
        plugins
    }

    fn id_list(&mut self, value: Option<&Value>, path: &str) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for raw in self.strings(value, path) {
            let id = normalize_id(raw);
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    fn entry(&mut self, key: &str, value: &Value, path: &str) -> PluginEntry {
        let mut entry = PluginEntry {
            key: key.to_owned(),
            ..PluginEntry::default()
        };
        let Some(object) = self.object(Some(value), path) else {
            return entry;
        };
        self.unknown_keys(
            object,
            path,
            &["enabled", "hooks", "subagent", "llm", "config"],
        );
        entry.enabled = self.bool(object.get("enabled"), &join_path(path, "enabled"));
        entry.disable_marker = object.len() == 1 && entry.enabled == Some(false);
        entry.config = self
            .object(object.get("config"), &join_path(path, "config"))
            .cloned();
        let hooks_path = join_path(path, "hooks");
        if let Some(hooks) = self.object(object.get("hooks"), &hooks_path) {
            self.unknown_keys(
                hooks,
                &hooks_path,
                &[
                    "allowPromptInjection",
                    "allowConversationAccess",
                    "timeoutMs",
                    "timeouts",
                ],
            );
            entry.allow_prompt_injection = self.bool(
                hooks.get("allowPromptInjection"),
                &join_path(&hooks_path, "allowPromptInjection"),
            );
            entry.allow_conversation_access = self.bool(
                hooks.get("allowConversationAccess"),
                &join_path(&hooks_path, "allowConversationAccess"),
            );
            self.positive_integer(
                hooks.get("timeoutMs"),
                &join_path(&hooks_path, "timeoutMs"),
                600_000,
            );
            let valid = |value: &Value| value.as_u64().filter(|ms| (1..=600_000).contains(ms));
            entry.hook_timeout_ms = hooks.get("timeoutMs").and_then(valid);
            let timeouts_path = join_path(&hooks_path, "timeouts");
            if let Some(timeouts) = self.object(hooks.get("timeouts"), &timeouts_path) {
                for (hook, value) in timeouts {
                    // A warning, not an error: a newer OpenClaw may know more events.
                    if !outpost_protocol::HOOK_EVENTS.contains(&hook.as_str()) {
                        let suggested = unknown_key_message(
                            hook,
                            &timeouts_path,
                            outpost_protocol::HOOK_EVENTS,
                        );
                        let message = if suggested.contains("did you mean") {
                            suggested.replacen("unknown key", "unknown hook event", 1)
                        } else {
                            format!(
                                "unknown hook event `{hook}` in `{timeouts_path}` (docs/protocol.md §6 lists them)"
                            )
                        };
                        self.warning(
                            Code::UnknownKey,
                            &join_path(&timeouts_path, hook),
                            format!("{message}: this timeout applies to nothing"),
                        );
                    }
                    self.positive_integer(Some(value), &join_path(&timeouts_path, hook), 600_000);
                    if let Some(ms) = valid(value) {
                        entry.hook_timeouts.insert(hook.clone(), ms);
                    }
                }
            }
        }
        // Accepted for compatibility with OpenClaw configs; Outpost has no use for them yet.
        for (section, keys) in [
            ("subagent", &["allowModelOverride", "allowedModels"][..]),
            (
                "llm",
                &[
                    "allowModelOverride",
                    "allowedModels",
                    "allowedCompletionModels",
                    "allowAuthProfileOverride",
                    "allowAgentIdOverride",
                ][..],
            ),
        ] {
            let section_path = join_path(path, section);
            if let Some(object) = self.object(object.get(section), &section_path) {
                self.unknown_keys(object, &section_path, keys);
                for (key, value) in object {
                    let key_path = join_path(&section_path, key);
                    if key.starts_with("allowed") {
                        self.strings(Some(value), &key_path);
                    } else if keys.contains(&key.as_str()) {
                        self.bool(Some(value), &key_path);
                    }
                }
            }
        }
        entry
    }

    fn outpost(&mut self, value: Option<&Value>, host: &Host) -> OutpostSettings {
        let mut settings = OutpostSettings {
            workspace: self.dir.to_path_buf(),
            global_dir: host
                .home
                .as_ref()
                .map(|home| home.join(".openclaw").join("extensions")),
            bundled_dir: host.bundled_dir.clone(),
            manifest_name: DEFAULT_MANIFEST_NAME.to_owned(),
            bin_path: Vec::new(),
            defaults: Some(Value::Object(Map::new())),
            plugins: BTreeMap::new(),
            api_listen: DEFAULT_API_LISTEN.parse().expect("a valid default address"),
            api_token: None,
            api_token_file: None,
            api_registry_file: None,
            http_listen: None,
            http_max_body_bytes: DEFAULT_HTTP_MAX_BODY_BYTES,
            metrics_sample_ms: DEFAULT_METRICS_SAMPLE_MS,
            sandbox: SandboxSettings::default(),
        };
        let Some(block) = self.object(value, "outpost") else {
            return settings;
        };
        self.unknown_keys(
            block,
            "outpost",
            &[
                "workspace",
                "globalDir",
                "bundledDir",
                "manifestName",
                "binPath",
                "defaults",
                "plugins",
                "api",
                "http",
                "metrics",
                "sandbox",
            ],
        );
        if let Some(raw) = self.string(block.get("workspace"), "outpost.workspace") {
            settings.workspace = self.resolve(raw);
        }
        if let Some(raw) = self.string(block.get("globalDir"), "outpost.globalDir") {
            settings.global_dir = Some(self.resolve(raw));
        }
        if let Some(raw) = self.string(block.get("bundledDir"), "outpost.bundledDir") {
            settings.bundled_dir = Some(self.resolve(raw));
        }
        if let Some(name) = self.string(block.get("manifestName"), "outpost.manifestName") {
            if is_plain_file_name(name) {
                name.clone_into(&mut settings.manifest_name);
            } else {
                self.error(
                    Code::InvalidValue,
                    "outpost.manifestName",
                    format!("`{name}` is not a plain file name (such as `fased.plugin.json`)"),
                );
            }
        }
        settings.bin_path = self
            .strings(block.get("binPath"), "outpost.binPath")
            .into_iter()
            .map(|raw| self.resolve(raw))
            .collect();
        if let Some(defaults) = self.object(block.get("defaults"), "outpost.defaults") {
            self.unknown_keys(defaults, "outpost.defaults", &POLICY_KEYS);
            settings.defaults = self.policy_layer(defaults, "outpost.defaults");
        }
        if let Some(plugins) = self.object(block.get("plugins"), "outpost.plugins") {
            for (key, value) in plugins {
                let path = join_path("outpost.plugins", key);
                let id = normalize_id(key);
                if id.is_empty() {
                    self.error(Code::InvalidValue, &path, "a plugin id cannot be blank");
                    continue;
                }
                let override_ = self.plugin_override(key, value, &path);
                if let Some(previous) = settings.plugins.insert(id.clone(), override_) {
                    self.warning(
                        Code::DuplicateEntry,
                        &path,
                        format!(
                            "`{key}` and `{}` both name plugin `{id}` (ids are not case-sensitive); this one wins",
                            previous.key
                        ),
                    );
                }
            }
        }
        if let Some(api) = self.object(block.get("api"), "outpost.api") {
            self.unknown_keys(
                api,
                "outpost.api",
                &["listen", "token", "tokenFile", "registryFile"],
            );
            if let Some(address) = self.address(api.get("listen"), "outpost.api.listen") {
                settings.api_listen = address;
            }
            if let Some(token) = self.string(api.get("token"), "outpost.api.token") {
                if token.trim().len() < 16 {
                    self.error(
                        Code::InvalidValue,
                        "outpost.api.token",
                        "the token is shorter than 16 characters; use a long random one, or leave it out and `outpost serve` generates one",
                    );
                } else {
                    settings.api_token = Some(token.trim().to_owned());
                }
            }
            if let Some(raw) = self.string(api.get("tokenFile"), "outpost.api.tokenFile") {
                settings.api_token_file = Some(self.resolve(raw));
            }
            if let Some(raw) = self.string(api.get("registryFile"), "outpost.api.registryFile") {
                settings.api_registry_file = Some(self.resolve(raw));
            }
        }
        if let Some(http) = self.object(block.get("http"), "outpost.http") {
            self.unknown_keys(http, "outpost.http", &["listen", "maxBodyBytes"]);
            settings.http_listen = self.address(http.get("listen"), "outpost.http.listen");
            let max = http.get("maxBodyBytes");
            self.positive_integer(max, "outpost.http.maxBodyBytes", 1 << 30);
            if let Some(bytes) = max
                .and_then(Value::as_u64)
                .filter(|b| (1..=1 << 30).contains(b))
            {
                settings.http_max_body_bytes = bytes;
            }
        }
        if let Some(sandbox) = self.object(block.get("sandbox"), "outpost.sandbox") {
            self.unknown_keys(
                sandbox,
                "outpost.sandbox",
                &["contain", "filesystem", "user", "stateDir"],
            );
            let settings = &mut settings.sandbox;
            if let Some(contain) = self.bool(sandbox.get("contain"), "outpost.sandbox.contain") {
                settings.contain = contain;
            }
            if let Some(on) = self.bool(sandbox.get("filesystem"), "outpost.sandbox.filesystem") {
                settings.filesystem = on;
            }
            settings.user = self.run_as(sandbox.get("user"), "outpost.sandbox.user");
            if let Some(raw) = self.string(sandbox.get("stateDir"), "outpost.sandbox.stateDir") {
                settings.state_dir = Some(self.resolve(raw));
            }
        }
        if let Some(metrics) = self.object(block.get("metrics"), "outpost.metrics") {
            self.unknown_keys(metrics, "outpost.metrics", &["sampleMs"]);
            match metrics.get("sampleMs") {
                None => {}
                Some(value) => match value.as_u64() {
                    Some(ms) if ms == 0 || (100..=3_600_000).contains(&ms) => {
                        settings.metrics_sample_ms = ms;
                    }
                    _ => self.error(
                        Code::InvalidValue,
                        "outpost.metrics.sampleMs",
                        format!(
                            "expected 0 (off) or milliseconds from 100 to 3600000, found {value}"
                        ),
                    ),
                },
            }
        }
        settings
    }

    fn plugin_override(&mut self, key: &str, value: &Value, path: &str) -> PluginOverride {
        let mut override_ = PluginOverride {
            key: key.to_owned(),
            ..PluginOverride::default()
        };
        let Some(object) = self.object(Some(value), path) else {
            return override_;
        };
        let mut known = vec!["env", "hostMethods", "allowCatchAllRoute", "sandbox"];
        known.extend(POLICY_KEYS);
        self.unknown_keys(object, path, &known);
        override_.allow_catch_all_route = self
            .bool(
                object.get("allowCatchAllRoute"),
                &join_path(path, "allowCatchAllRoute"),
            )
            .unwrap_or(false);
        if let Some(sandbox) = self.object(object.get("sandbox"), &join_path(path, "sandbox")) {
            override_.sandbox = self.sandbox_override(sandbox, &join_path(path, "sandbox"));
        }
        override_.host_methods = self
            .strings(object.get("hostMethods"), &join_path(path, "hostMethods"))
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut env_ok = true;
        if let Some(env) = object.get("env") {
            let (grant, problems) = parse_env_grant(env, &join_path(path, "env"));
            env_ok = problems.is_empty();
            for (problem_path, message) in problems {
                self.error(Code::InvalidValue, &problem_path, message);
            }
            override_.env = grant;
        }
        override_.policy = self.policy_layer(object, path).filter(|_| env_ok);
        override_
    }

    fn sandbox_override(&mut self, object: &Map<String, Value>, path: &str) -> SandboxOverride {
        self.unknown_keys(
            object,
            path,
            &["contain", "filesystem", "read", "write", "user"],
        );
        let paths = |reader: &mut Self, key: &str| -> Vec<PathBuf> {
            reader
                .strings(object.get(key), &join_path(path, key))
                .into_iter()
                .map(|raw| reader.resolve(raw))
                .collect()
        };
        SandboxOverride {
            contain: self.bool(object.get("contain"), &join_path(path, "contain")),
            filesystem: self.bool(object.get("filesystem"), &join_path(path, "filesystem")),
            read: paths(self, "read"),
            write: paths(self, "write"),
            user: self.run_as(object.get("user"), &join_path(path, "user")),
        }
    }

    /// A user to run plugins as: a name from the user database or a numeric `uid` or
    /// `uid:gid`. Never root: that would undo what the setting is for.
    fn run_as(&mut self, value: Option<&Value>, path: &str) -> Option<RunAs> {
        let text = self.string(value, path)?;
        let run_as = match parse_run_as(text) {
            Ok(run_as) => run_as,
            Err(message) => {
                self.error(Code::InvalidValue, path, message);
                return None;
            }
        };
        if run_as.uid == 0 || run_as.gid == 0 {
            self.error(
                Code::InvalidValue,
                path,
                format!(
                    "`{text}` is root or in group root; name an unprivileged user and group (create one such as `outpost-plugins`, or use `nobody`)"
                ),
            );
            return None;
        }
        Some(run_as)
    }

    /// Checks the supervision policy keys of `object` and returns them as a layer, or
    /// `None` after reporting each problem with the full path of its key.
    fn policy_layer(&mut self, object: &Map<String, Value>, path: &str) -> Option<Value> {
        let layer = policy_keys(object);
        let problems = check_policy_layer(&layer, path);
        let clean = problems.is_empty();
        for (problem_path, message) in problems {
            self.diagnostics.push(
                Diagnostic::error(Code::PolicyInvalid, message)
                    .file(self.file)
                    .path_and_key(&problem_path),
            );
        }
        clean.then_some(layer)
    }
}

/// The supervision policy keys of an object, as a layer.
pub(crate) fn policy_keys(object: &Map<String, Value>) -> Value {
    Value::Object(
        object
            .iter()
            .filter(|(key, _)| POLICY_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

/// The message for an unknown key, with a suggestion when a known key is close.
pub(crate) fn unknown_key_message(key: &str, path: &str, known: &[&str]) -> String {
    let place = if path.is_empty() {
        String::new()
    } else {
        format!(" in `{path}`")
    };
    let suggestion = known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(key, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2 || candidate.eq_ignore_ascii_case(key))
        .min_by_key(|(distance, _)| *distance);
    match suggestion {
        Some((_, candidate)) => format!("unknown key `{key}`{place}; did you mean `{candidate}`?"),
        None => format!(
            "unknown key `{key}`{place} (known keys: {})",
            known.join(", ")
        ),
    }
}

/// Checks one supervision policy layer on its own, so each problem names its key:
/// unknown keys are found by comparing with the serialized defaults, bad values by
/// trying each leaf alone.
pub(crate) fn check_policy_layer(layer: &Value, path: &str) -> Vec<(String, String)> {
    let reference =
        serde_json::to_value(SupervisionPolicy::default()).expect("the default policy serializes");
    let mut problems = Vec::new();
    let Value::Object(sections) = layer else {
        problems.push((
            path.to_owned(),
            format!("expected an object, found {}", type_name(layer)),
        ));
        return problems;
    };
    for (section, value) in sections {
        let section_path = join_path(path, section);
        let Some(Value::Object(known)) = reference.get(section) else {
            let names: Vec<&str> = reference
                .as_object()
                .map(|object| object.keys().map(String::as_str).collect())
                .unwrap_or_default();
            problems.push((section_path, unknown_key_message(section, path, &names)));
            continue;
        };
        let Value::Object(fields) = value else {
            problems.push((
                section_path,
                format!("expected an object, found {}", type_name(value)),
            ));
            continue;
        };
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        for (field, field_value) in fields {
            let field_path = join_path(&section_path, field);
            if !known.contains_key(field) {
                problems.push((
                    field_path,
                    unknown_key_message(field, &section_path, &names),
                ));
                continue;
            }
            let single = serde_json::json!({ section: { field: field_value } });
            match SupervisionPolicy::from_layers([&single]) {
                Err(error) => {
                    problems.push((field_path, format!("invalid value {field_value}: {error}")));
                }
                Ok(policy) => {
                    let leaf = format!("{section}.{field}");
                    problems.extend(
                        policy
                            .problems()
                            .into_iter()
                            .filter(|(path, _)| *path == leaf)
                            .map(|(_, message)| (field_path.clone(), format!("{field} {message}"))),
                    );
                }
            }
        }
    }
    problems
}

/// Parses `{ passthrough: [NAME...], set: { NAME: "value" } }`, reporting problems as
/// (path, message).
pub(crate) fn parse_env_grant(value: &Value, path: &str) -> (EnvGrant, Vec<(String, String)>) {
    let mut grant = EnvGrant::default();
    let mut problems = Vec::new();
    let Value::Object(object) = value else {
        problems.push((
            path.to_owned(),
            format!("expected an object, found {}", type_name(value)),
        ));
        return (grant, problems);
    };
    for key in object.keys() {
        if key != "passthrough" && key != "set" {
            problems.push((
                join_path(path, key),
                unknown_key_message(key, path, &["passthrough", "set"]),
            ));
        }
    }
    let passthrough_path = join_path(path, "passthrough");
    match object.get("passthrough") {
        None => {}
        Some(Value::Array(names)) => {
            for (index, name) in names.iter().enumerate() {
                let item_path = index_path(&passthrough_path, index);
                match name.as_str() {
                    Some(name) if is_env_name(name) => {
                        if let Some(problem) = reserved_env(name) {
                            problems.push((item_path, problem));
                        } else if !grant.passthrough.iter().any(|known| known == name) {
                            grant.passthrough.push(name.to_owned());
                        }
                    }
                    _ => problems.push((
                        item_path,
                        format!("{name} is not an environment variable name (letters, digits, `_`; not starting with a digit)"),
                    )),
                }
            }
        }
        Some(other) => problems.push((
            passthrough_path,
            format!(
                "expected an array of variable names, found {}",
                type_name(other)
            ),
        )),
    }
    let set_path = join_path(path, "set");
    match object.get("set") {
        None => {}
        Some(Value::Object(pairs)) => {
            for (name, value) in pairs {
                let item_path = join_path(&set_path, name);
                if !is_env_name(name) {
                    problems.push((
                        item_path,
                        format!("`{name}` is not an environment variable name (letters, digits, `_`; not starting with a digit)"),
                    ));
                } else if let Some(problem) = reserved_env(name) {
                    problems.push((item_path, problem));
                } else if let Some(text) = value.as_str() {
                    if text.contains('\0') {
                        problems.push((item_path, "a value cannot contain a NUL byte".to_owned()));
                    } else {
                        grant.set.insert(name.clone(), text.to_owned());
                    }
                } else {
                    problems.push((
                        item_path,
                        format!("expected a string, found {}", type_name(value)),
                    ));
                }
            }
        }
        Some(other) => problems.push((
            set_path,
            format!(
                "expected an object of NAME: \"value\" pairs, found {}",
                type_name(other)
            ),
        )),
    }
    (grant, problems)
}

fn reserved_env(name: &str) -> Option<String> {
    name.starts_with("OUTPOST_").then(|| {
        format!("`{name}`: variables starting with OUTPOST_ are set by the supervisor itself")
    })
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// OpenClaw's id normalisation for `allow`, `deny` and `entries`: trimmed, lowercased.
pub(crate) fn normalize_id(id: &str) -> String {
    id.trim().to_lowercase()
}

/// `~` and `~/x` expand to the home directory; other relative paths join `base`.
/// `name`, `uid` or `uid:gid`: the user's group when no gid is given.
fn parse_run_as(text: &str) -> Result<RunAs, String> {
    use nix::unistd::{Group, Uid, User};
    let text = text.trim();
    let (user_part, group_part) = match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    };
    let user = match user_part.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(
                || (uid, None, uid.to_string()),
                |user| (uid, Some(user.gid.as_raw()), user.name),
            ),
        Err(_) => match User::from_name(user_part) {
            Ok(Some(user)) => (user.uid.as_raw(), Some(user.gid.as_raw()), user.name),
            Ok(None) => {
                return Err(format!(
                    "no user `{user_part}` on this machine; create it, or give a numeric uid such as `65534:65534`"
                ));
            }
            Err(error) => return Err(format!("could not look up user `{user_part}`: {error}")),
        },
    };
    let (uid, user_gid, name) = user;
    let gid = match group_part {
        None => user_gid.ok_or_else(|| {
            format!("uid {uid} has no entry in the user database, so its group is unknown; write `{uid}:GID`")
        })?,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match Group::from_name(group) {
                Ok(Some(found)) => found.gid.as_raw(),
                _ => return Err(format!("no group `{group}` on this machine")),
            },
        },
    };
    Ok(RunAs::new(uid, gid, name))
}

pub(crate) fn resolve_path(raw: &str, base: &Path, home: Option<&Path>) -> PathBuf {
    let expanded = match (raw.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home.to_path_buf(),
        (Some(rest), Some(home)) if rest.starts_with('/') => home.join(&rest[1..]),
        _ => PathBuf::from(raw),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_keys_suggest_the_closest_known_key() {
        let message = unknown_key_message("alow", "plugins", &["allow", "deny"]);
        assert!(message.contains("did you mean `allow`?"), "{message}");
        let message = unknown_key_message("zzzzzz", "plugins", &["allow", "deny"]);
        assert!(message.contains("known keys: allow, deny"), "{message}");
    }

    #[test]
    fn policy_layer_problems_name_the_exact_key() {
        let layer = json!({
            "timeouts": {"handshakeMS": 1, "callMs": "soon"},
            "restart": {"enabled": true},
            "tiemouts": {}
        });
        let problems = check_policy_layer(&layer, "outpost.defaults");
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "outpost.defaults.tiemouts",
                "outpost.defaults.timeouts.callMs",
                "outpost.defaults.timeouts.handshakeMS"
            ],
            "{problems:?}"
        );
        assert!(
            problems[0].1.contains("did you mean `timeouts`?"),
            "{problems:?}"
        );
    }

    #[test]
    fn env_grants_refuse_bad_and_reserved_names() {
        let (grant, problems) = parse_env_grant(
            &json!({"passthrough": ["A_KEY", "1BAD", "OUTPOST_PLUGIN_ID"], "set": {"MODE": "dev", "N": 3}}),
            "env",
        );
        assert_eq!(grant.passthrough, ["A_KEY"]);
        assert_eq!(grant.set.get("MODE").map(String::as_str), Some("dev"));
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            ["env.passthrough[1]", "env.passthrough[2]", "env.set.N"]
        );
    }

    #[test]
    fn paths_resolve_against_the_config_dir_and_home() {
        let base = Path::new("/etc/outpost");
        let home = Some(Path::new("/home/op"));
        assert_eq!(
            resolve_path("plugins", base, home),
            Path::new("/etc/outpost/plugins")
        );
        assert_eq!(resolve_path("~/x", base, home), Path::new("/home/op/x"));
        assert_eq!(resolve_path("~", base, home), Path::new("/home/op"));
        assert_eq!(resolve_path("/abs", base, home), Path::new("/abs"));
        assert_eq!(
            resolve_path("~other", base, home),
            Path::new("/etc/outpost/~other")
        );
    }

    #[test]
    fn the_api_http_and_metrics_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.json5");
        let host = Host {
            home: None,
            bundled_dir: None,
        };
        std::fs::write(
            &path,
            "{ outpost: { api: { listen: '127.0.0.1:9000', token: 'a-long-enough-token', tokenFile: 'state/token' },
               http: { listen: '127.0.0.1:9001', maxBodyBytes: 4096 }, metrics: { sampleMs: 0 } } }",
        )
        .unwrap();
        let (config, diagnostics) = read(&path, &host).unwrap();
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let outpost = &config.outpost;
        assert_eq!(outpost.api_listen.port(), 9000);
        assert_eq!(outpost.api_token.as_deref(), Some("a-long-enough-token"));
        assert_eq!(
            outpost.api_token_file.as_deref(),
            Some(dir.path().join("state/token").as_path())
        );
        assert_eq!(outpost.http_listen.map(|a| a.port()), Some(9001));
        assert_eq!(outpost.http_max_body_bytes, 4096);
        assert_eq!(outpost.metrics_sample_ms, 0);

        std::fs::write(
            &path,
            "{ outpost: { api: { token: 'short', listen: 'nowhere' }, http: { listen: '0.0.0.0:80', maxBodyBytes: 0 }, metrics: { sampleMs: 5 } } }",
        )
        .unwrap();
        let (config, diagnostics) = read(&path, &host).unwrap();
        let errors: Vec<_> = diagnostics
            .iter()
            .filter(|d| d.severity == crate::control::Severity::Error)
            .filter_map(|d| d.path.as_deref())
            .collect();
        assert_eq!(
            errors,
            [
                "outpost.api.listen",
                "outpost.api.token",
                "outpost.http.maxBodyBytes",
                "outpost.metrics.sampleMs"
            ]
        );
        assert!(
            diagnostics
                .iter()
                .any(|d| d.path.as_deref() == Some("outpost.http.listen")
                    && d.message.contains("beyond loopback"))
        );
        assert_eq!(config.outpost.api_token, None);
        assert_eq!(config.outpost.metrics_sample_ms, DEFAULT_METRICS_SAMPLE_MS);
    }

    #[test]
    fn hook_timeouts_of_unknown_events_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.json5");
        std::fs::write(
            &path,
            "{ plugins: { entries: { acme: { hooks: { timeouts: { before_tool_cal: 50, on_tuesday: 50, before_tool_call: 50 } } } } } }",
        )
        .unwrap();
        let host = Host {
            home: None,
            bundled_dir: None,
        };
        let (config, diagnostics) = read(&path, &host).unwrap();
        let warnings: Vec<&str> = diagnostics
            .iter()
            .filter(|d| d.severity == crate::control::Severity::Warning)
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("did you mean `before_tool_call`?"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("unknown hook event `on_tuesday`"),
            "{warnings:?}"
        );
        assert_eq!(config.plugins.entries["acme"].hook_timeouts.len(), 3);
    }

    #[test]
    fn host_methods_grants_are_read_per_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.json5");
        std::fs::write(
            &path,
            "{ outpost: { plugins: { Acme: { hostMethods: ['clock.*', 3, 'notes.count'] } } } }",
        )
        .unwrap();
        let host = Host {
            home: None,
            bundled_dir: None,
        };
        let (config, diagnostics) = read(&path, &host).unwrap();
        assert_eq!(
            config.outpost.plugins["acme"].host_methods,
            ["clock.*", "notes.count"]
        );
        let paths: Vec<_> = diagnostics
            .iter()
            .filter(|d| d.severity == crate::control::Severity::Error)
            .filter_map(|d| d.path.as_deref())
            .collect();
        assert_eq!(paths, ["outpost.plugins.Acme.hostMethods[1]"]);
    }
}
