//! Plugin manifests (`openclaw.plugin.json`), read the way the real OpenClaw loader reads
//! them.
//!
//! The manifest is JSON5 and at most [`MAX_MANIFEST_BYTES`]. `id` (a non-blank string,
//! not reserved) and `configSchema` (an object) are required. A handful of fields are
//! refused when malformed, exactly where OpenClaw refuses them (`categories`,
//! `backupResources`, `controlUi`, and the shape of `dashboard` and `themes`); every
//! other field is normalised leniently: a string list that is not an array is empty,
//! blank entries are dropped, unknown kinds and platforms are dropped, and unknown keys
//! are ignored. The `outpost` key is Outpost's own (OpenClaw ignores it); it is kept
//! as written here and checked by the launch planner.

use std::collections::BTreeMap;

use outpost_protocol::ManifestField;
use serde::Serialize;
use serde_json::{Map, Value};

use super::plugin_id;
use super::text::{self, type_name};

/// The largest manifest read, as in OpenClaw: 256 KiB.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024;

/// Plugin ids OpenClaw core keeps for itself (compared case-insensitively).
pub const RESERVED_PLUGIN_IDS: &[&str] = &["node-mcp"];

/// The keys under `contracts` OpenClaw reads; others are ignored.
pub const CONTRACT_KEYS: &[&str] = &[
    "codeModeExecutors",
    "embeddedExtensionFactories",
    "agentToolResultMiddleware",
    "trustedToolPolicies",
    "externalAuthProviders",
    "decisionProviders",
    "embeddingProviders",
    "speechProviders",
    "realtimeTranscriptionProviders",
    "realtimeVoiceProviders",
    "mediaUnderstandingProviders",
    "transcriptSourceProviders",
    "documentExtractors",
    "imageGenerationProviders",
    "videoGenerationProviders",
    "musicGenerationProviders",
    "webContentExtractors",
    "webFetchProviders",
    "webSearchProviders",
    "workerProviders",
    "usageProviders",
    "migrationProviders",
    "gatewayMethodDispatch",
    "tools",
];

/// Every top-level field the OpenClaw manifest loader knows, plus Outpost's `outpost`
/// and the editor hint `$schema`. Other keys are ignored (with an advisory).
pub const KNOWN_FIELDS: &[&str] = &[
    "$schema",
    "id",
    "configSchema",
    "requiresPlugins",
    "enabledByDefault",
    "enabledByDefaultOnPlatforms",
    "legacyPluginIds",
    "autoEnableWhenConfiguredProviders",
    "kind",
    "channels",
    "providers",
    "providerCatalogEntry",
    "capabilityCatalogEntry",
    "modelSupport",
    "modelCatalog",
    "modelPricing",
    "modelIdNormalization",
    "providerEndpoints",
    "providerRequest",
    "secretProviderIntegrations",
    "cliBackends",
    "syntheticAuthRefs",
    "nonSecretAuthMarkers",
    "commandAliases",
    "cliCommands",
    "providerUsageAuthEnvVars",
    "providerAuthAliases",
    "providerAuthChoices",
    "activation",
    "backupResources",
    "setup",
    "doctorContract",
    "doctorHealthChecks",
    "sessionRouteStateOwners",
    "qaRunners",
    "dashboard",
    "mcpServers",
    "themes",
    "contracts",
    "transcriptSources",
    "configContracts",
    "mediaUnderstandingProviderMetadata",
    "imageGenerationProviderMetadata",
    "videoGenerationProviderMetadata",
    "musicGenerationProviderMetadata",
    "toolMetadata",
    "channelConfigs",
    "channelAccountKeyPolicies",
    "skills",
    "name",
    "description",
    "catalog",
    "categories",
    "version",
    "configGroups",
    "uiHints",
    "decisionModels",
    "controlUi",
    "outpost",
];

/// Catalog categories OpenClaw accepts (the active taxonomy and the legacy values).
const CATEGORIES: &[&str] = &[
    "channels",
    "models",
    "agent-runtimes",
    "memory",
    "context",
    "voice",
    "web",
    "media",
    "security",
    "integrations",
    "developer-tools",
    "infrastructure",
    "documents-files",
    "inbox-collaboration",
    "productivity",
    "scheduling",
    "finance-payments",
    "sales-marketing",
    "data-analytics",
    "agent-orchestration",
    "research",
    "other",
    "tools",
    "runtime",
    "gateway",
];

/// Platform names as Node.js spells them (`enabledByDefaultOnPlatforms`).
const PLATFORMS: &[&str] = &[
    "aix", "android", "darwin", "freebsd", "haiku", "linux", "openbsd", "sunos", "win32", "cygwin",
    "netbsd",
];

/// An exclusive plugin kind, selected through `plugins.slots`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// `memory`: one active memory plugin (`plugins.slots.memory`).
    Memory,
    /// `context-engine`: one active context engine (`plugins.slots.contextEngine`).
    ContextEngine,
}

impl PluginKind {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::ContextEngine => "context-engine",
        }
    }
}

/// A manifest the loader rejects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON5.
    #[error("{line}:{column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// JSON5, but not an object.
    #[error("expected an object at the top level, found {found}")]
    NotAnObject {
        /// What it is instead.
        found: &'static str,
    },
    /// No usable `id`.
    #[error("`id` is required: a non-blank string naming the plugin")]
    MissingId,
    /// An id no plugin may have.
    #[error("plugin id \"{shown}\" {problem}")]
    InvalidId {
        /// The id, escaped for display.
        shown: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An id OpenClaw core keeps for itself.
    #[error("plugin id `{id}` is reserved by OpenClaw core; choose another id")]
    ReservedId {
        /// The id.
        id: String,
    },
    /// No `configSchema` object.
    #[error(
        "`configSchema` is required and must be an object (a plugin without config can use {{\"type\": \"object\", \"additionalProperties\": false}})"
    )]
    MissingConfigSchema,
    /// A field OpenClaw refuses when malformed.
    #[error("`{field}` {message}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// A plugin manifest, normalised.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Manifest {
    /// The canonical plugin id (trimmed; the key of `plugins.entries`).
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// A short summary.
    pub description: Option<String>,
    /// Informational version.
    pub version: Option<String>,
    /// Exclusive kinds (`memory`, `context-engine`), deduplicated.
    pub kind: Vec<PluginKind>,
    /// Channel ids the plugin owns.
    pub channels: Vec<String>,
    /// Text-inference provider ids the plugin owns.
    pub providers: Vec<String>,
    /// CLI inference backend ids the plugin owns.
    pub cli_backends: Vec<String>,
    /// Skill directories, relative to the plugin root.
    pub skills: Vec<String>,
    /// `contracts`: the capability ownership snapshot (`tools`, `speechProviders`...);
    /// only the keys OpenClaw knows, only non-empty lists.
    pub contracts: BTreeMap<String, Vec<String>>,
    /// The JSON Schema of the plugin's config.
    pub config_schema: Map<String, Value>,
    /// Config UI hints by config key (labels, placeholders, `sensitive`).
    pub ui_hints: Map<String, Value>,
    /// `enabledByDefault: true` (bundled plugins only).
    pub enabled_by_default: bool,
    /// Platforms on which a bundled plugin is on by default.
    pub enabled_by_default_on_platforms: Vec<String>,
    /// Older ids that mean this plugin.
    pub legacy_plugin_ids: Vec<String>,
    /// Plugin ids that must also be installed for this one to have an effect.
    pub requires_plugins: Vec<String>,
    /// Catalog categories, primary first.
    pub categories: Vec<String>,
    /// The `outpost` block, as written (checked by the launch planner).
    pub outpost: Option<Value>,
    /// Fields present but ignored: unknown top-level keys, unknown `contracts` keys.
    pub ignored_fields: Vec<String>,
    raw: Map<String, Value>,
}

impl Manifest {
    /// Parses manifest text (JSON5).
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let value = text::parse_json5(text).map_err(|error| ManifestError::Syntax {
            line: error.line,
            column: error.column,
            message: error.message,
        })?;
        Self::from_value(value)
    }

    /// Normalises an already parsed manifest.
    pub fn from_value(value: Value) -> Result<Self, ManifestError> {
        let Value::Object(raw) = value else {
            return Err(ManifestError::NotAnObject {
                found: type_name(&value),
            });
        };
        let id = optional_string(raw.get("id")).ok_or(ManifestError::MissingId)?;
        plugin_id::check(&id).map_err(|problem| ManifestError::InvalidId {
            shown: plugin_id::printable(&id),
            problem: problem.to_string(),
        })?;
        if RESERVED_PLUGIN_IDS
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(&id))
        {
            return Err(ManifestError::ReservedId { id });
        }
        let Some(Value::Object(config_schema)) = raw.get("configSchema") else {
            return Err(ManifestError::MissingConfigSchema);
        };
        let config_schema = config_schema.clone();
        let categories = check_categories(raw.get("categories"))?;
        check_backup_resources(raw.get("backupResources"))?;
        check_control_ui(raw.get("controlUi"))?;
        check_dashboard(raw.get("dashboard"))?;
        check_themes(raw.get("themes"), &id)?;

        let mut ignored_fields: Vec<String> = raw
            .keys()
            .filter(|key| !KNOWN_FIELDS.contains(&key.as_str()))
            .cloned()
            .collect();
        let mut contracts = BTreeMap::new();
        if let Some(Value::Object(raw_contracts)) = raw.get("contracts") {
            for (key, value) in raw_contracts {
                if CONTRACT_KEYS.contains(&key.as_str()) {
                    let ids = string_list(Some(value));
                    if !ids.is_empty() {
                        contracts.insert(key.clone(), ids);
                    }
                } else {
                    ignored_fields.push(format!("contracts.{key}"));
                }
            }
        }
        let mut kind = Vec::new();
        let kinds = match raw.get("kind") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for name in kinds {
            let parsed = match name {
                "memory" => PluginKind::Memory,
                "context-engine" => PluginKind::ContextEngine,
                _ => continue,
            };
            if !kind.contains(&parsed) {
                kind.push(parsed);
            }
        }
        let ui_hints = match raw.get("uiHints") {
            Some(Value::Object(hints)) => hints.clone(),
            _ => Map::new(),
        };
        Ok(Self {
            name: optional_string(raw.get("name")),
            description: optional_string(raw.get("description")),
            version: optional_string(raw.get("version")),
            kind,
            channels: string_list(raw.get("channels")),
            providers: string_list(raw.get("providers")),
            cli_backends: string_list(raw.get("cliBackends")),
            skills: string_list(raw.get("skills")),
            contracts,
            config_schema,
            ui_hints,
            enabled_by_default: raw.get("enabledByDefault") == Some(&Value::Bool(true)),
            enabled_by_default_on_platforms: string_list(raw.get("enabledByDefaultOnPlatforms"))
                .into_iter()
                .filter(|platform| PLATFORMS.contains(&platform.as_str()))
                .collect(),
            legacy_plugin_ids: string_list(raw.get("legacyPluginIds")),
            requires_plugins: string_list(raw.get("requiresPlugins")),
            categories,
            outpost: raw.get("outpost").cloned(),
            ignored_fields,
            id,
            raw,
        })
    }

    /// Whether the manifest lists `id` in `field`: the coverage rule of the registry
    /// (a registration must be declared where the manifest can declare it).
    pub fn declares(&self, field: ManifestField, id: &str) -> bool {
        let list = match field {
            ManifestField::TopLevel("providers") => Some(&self.providers),
            ManifestField::TopLevel("channels") => Some(&self.channels),
            ManifestField::TopLevel("cliBackends") => Some(&self.cli_backends),
            ManifestField::TopLevel("skills") => Some(&self.skills),
            ManifestField::TopLevel(_) => None,
            ManifestField::Contracts(key) => self.contracts.get(key),
        };
        list.is_some_and(|ids| ids.iter().any(|declared| declared == id))
    }

    /// Whether the manifest declares `kind`.
    pub fn has_kind(&self, kind: PluginKind) -> bool {
        self.kind.contains(&kind)
    }

    /// Whether a bundled copy of this plugin is on by default on this machine.
    pub fn enabled_by_default_here(&self) -> bool {
        self.enabled_by_default
            || self
                .enabled_by_default_on_platforms
                .iter()
                .any(|platform| platform == node_platform())
    }

    /// The manifest as written.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
}

/// This machine's platform as Node.js names it.
fn node_platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        "solaris" | "illumos" => "sunos",
        other => other,
    }
}

/// A trimmed, non-blank string, or `None`.
fn optional_string(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// The trimmed, non-blank strings of an array; anything else is an empty list.
fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| optional_string(Some(item)))
            .collect(),
        _ => Vec::new(),
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ManifestError {
    ManifestError::InvalidField {
        field,
        message: message.into(),
    }
}

fn check_categories(value: Option<&Value>) -> Result<Vec<String>, ManifestError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(invalid("categories", "must be an array"));
    };
    if items.is_empty() || items.len() > 3 {
        return Err(invalid(
            "categories",
            "must contain between 1 and 3 entries",
        ));
    }
    let mut categories: Vec<String> = Vec::new();
    for item in items {
        let Some(category) = item.as_str().filter(|slug| CATEGORIES.contains(slug)) else {
            return Err(invalid(
                "categories",
                format!(
                    "contains unknown category {item} (known: {})",
                    CATEGORIES.join(", ")
                ),
            ));
        };
        if categories.iter().any(|seen| seen == category) {
            return Err(invalid("categories", "must not contain duplicates"));
        }
        categories.push(category.to_owned());
    }
    Ok(categories)
}

fn check_backup_resources(value: Option<&Value>) -> Result<(), ManifestError> {
    let Some(value) = value else {
        return Ok(());
    };
    let Value::Array(items) = value else {
        return Err(invalid("backupResources", "must be an array"));
    };
    for (index, item) in items.iter().enumerate() {
        let Some(entry) = item.as_object().filter(|entry| {
            entry.len() == 3
                && ["disposition", "scope", "relativePath"]
                    .iter()
                    .all(|key| entry.contains_key(*key))
        }) else {
            return Err(invalid(
                "backupResources",
                format!("[{index}] must contain only disposition, scope, and relativePath"),
            ));
        };
        if !matches!(
            entry["disposition"].as_str(),
            Some("include" | "regenerable")
        ) {
            return Err(invalid(
                "backupResources",
                format!("[{index}].disposition must be \"include\" or \"regenerable\""),
            ));
        }
        if !matches!(entry["scope"].as_str(), Some("state" | "agent")) {
            return Err(invalid(
                "backupResources",
                format!("[{index}].scope must be \"state\" or \"agent\""),
            ));
        }
        if !entry["relativePath"]
            .as_str()
            .is_some_and(is_strict_relative_path)
        {
            return Err(invalid(
                "backupResources",
                format!("[{index}].relativePath must be a strict relative POSIX path"),
            ));
        }
    }
    Ok(())
}

/// No backslash, NUL, leading `/`, URL scheme, drive letter, or empty/`.`/`..` segment.
fn is_strict_relative_path(path: &str) -> bool {
    let has_scheme = path.split_once(':').is_some_and(|(scheme, _)| {
        let mut chars = scheme.chars();
        chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    });
    !path.is_empty()
        && !path.contains(['\\', '\0'])
        && !path.starts_with('/')
        && !has_scheme
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

fn check_control_ui(value: Option<&Value>) -> Result<(), ManifestError> {
    const MESSAGE: &str = "must contain only `entry` (a JavaScript file in a dedicated dist/ subdirectory) and optional `styles` (at most 16 CSS files next to it)";
    let Some(value) = value else {
        return Ok(());
    };
    let Some(object) = value
        .as_object()
        .filter(|object| object.keys().all(|key| key == "entry" || key == "styles"))
    else {
        return Err(invalid("controlUi", MESSAGE));
    };
    let entry = object
        .get("entry")
        .and_then(Value::as_str)
        .map(|entry| entry.strip_prefix("./").unwrap_or(entry))
        .unwrap_or_default();
    let entry_ok = entry.len() <= 512
        && entry.strip_prefix("dist/").is_some_and(|rest| {
            let segments: Vec<&str> = rest.split('/').collect();
            segments.len() >= 2
                && segments.iter().all(|segment| is_asset_segment(segment))
                && segments
                    .last()
                    .is_some_and(|file| has_extension(file, &[".js", ".mjs"]))
        });
    if !entry_ok {
        return Err(invalid("controlUi", MESSAGE));
    }
    let prefix = &entry[..=entry.rfind('/').unwrap_or(0)];
    match object.get("styles") {
        None => Ok(()),
        Some(Value::Array(styles)) if styles.len() <= 16 => {
            for style in styles {
                let style = style
                    .as_str()
                    .map(|style| style.strip_prefix("./").unwrap_or(style))
                    .unwrap_or_default();
                let segments: Vec<&str> = style.split('/').collect();
                let style_ok = style.len() <= 512
                    && style.starts_with(prefix)
                    && segments.len() >= 2
                    && segments.iter().all(|segment| is_asset_segment(segment))
                    && segments
                        .last()
                        .is_some_and(|file| has_extension(file, &[".css"]));
                if !style_ok {
                    return Err(invalid("controlUi", MESSAGE));
                }
            }
            Ok(())
        }
        Some(_) => Err(invalid("controlUi", MESSAGE)),
    }
}

/// `[\w-][\w.-]*`.
fn is_asset_segment(segment: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut chars = segment.chars();
    chars.next().is_some_and(word) && chars.all(|c| word(c) || c == '.')
}

/// Ends with one of `extensions` with at least one character before it.
fn has_extension(file: &str, extensions: &[&str]) -> bool {
    extensions
        .iter()
        .any(|extension| file.len() > extension.len() && file.ends_with(extension))
}

fn check_dashboard(value: Option<&Value>) -> Result<(), ManifestError> {
    let Some(value) = value else {
        return Ok(());
    };
    let Value::Object(dashboard) = value else {
        return Err(invalid("dashboard", "must be an object"));
    };
    for key in ["dataBindings", "actionVerbs"] {
        if dashboard.get(key).is_some_and(|list| !list.is_array()) {
            return Err(invalid("dashboard", format!(".{key} must be an array")));
        }
    }
    Ok(())
}

fn check_themes(value: Option<&Value>, id: &str) -> Result<(), ManifestError> {
    const KEYS: [&str; 6] = ["id", "name", "description", "source", "hats", "critters"];
    let Some(value) = value else {
        return Ok(());
    };
    let Some(themes) = value.as_array().filter(|themes| themes.len() <= 32) else {
        return Err(invalid(
            "themes",
            "must be an array with at most 32 entries",
        ));
    };
    if !themes.is_empty() && id == "user" {
        return Err(invalid(
            "themes",
            "require a plugin id outside the reserved `user` namespace",
        ));
    }
    for (index, theme) in themes.iter().enumerate() {
        let Some(theme) = theme.as_object() else {
            return Err(invalid("themes", format!("[{index}] must be an object")));
        };
        let strings_ok = ["id", "name", "description", "source"].iter().all(|key| {
            theme
                .get(*key)
                .and_then(Value::as_str)
                .is_some_and(|text| !text.trim().is_empty())
        });
        if !strings_ok || theme.keys().any(|key| !KEYS.contains(&key.as_str())) {
            return Err(invalid(
                "themes",
                format!("[{index}] requires a unique safe id, name, description, and JSON source"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({"id": "acme", "configSchema": {"type": "object"}})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut manifest = minimal();
        manifest[key] = value;
        manifest
    }

    #[test]
    fn required_fields_and_reserved_ids() {
        let cases = [
            (json!([]), "expected an object"),
            (json!({"configSchema": {}}), "`id` is required"),
            (json!({"id": "  ", "configSchema": {}}), "`id` is required"),
            (
                json!({"id": "Node-MCP", "configSchema": {}}),
                "reserved by OpenClaw core",
            ),
            (json!({"id": "acme"}), "`configSchema` is required"),
            (
                json!({"id": "acme", "configSchema": true}),
                "`configSchema` is required",
            ),
        ];
        for (manifest, expected) in cases {
            let error = Manifest::from_value(manifest.clone()).unwrap_err();
            assert!(error.to_string().contains(expected), "{manifest}: {error}");
        }
    }

    #[test]
    fn strict_fields_are_refused_when_malformed() {
        let cases = [
            ("categories", json!("channels"), "must be an array"),
            ("categories", json!([]), "between 1 and 3"),
            ("categories", json!(["channels", "channels"]), "duplicates"),
            ("categories", json!(["bogus"]), "unknown category"),
            ("backupResources", json!({}), "must be an array"),
            (
                "backupResources",
                json!([{"disposition": "include", "scope": "state", "relativePath": "../x"}]),
                "strict relative POSIX path",
            ),
            (
                "backupResources",
                json!([{"disposition": "keep", "scope": "state", "relativePath": "x"}]),
                "disposition",
            ),
            ("controlUi", json!({"entry": "index.js"}), "dist/"),
            (
                "controlUi",
                json!({"entry": "dist/ui/a.js", "extra": 1}),
                "only `entry`",
            ),
            (
                "controlUi",
                json!({"entry": "dist/ui/a.js", "styles": ["dist/other/a.css"]}),
                "CSS",
            ),
            ("dashboard", json!([]), "must be an object"),
            (
                "dashboard",
                json!({"actionVerbs": {}}),
                "actionVerbs must be an array",
            ),
            ("themes", json!({}), "at most 32"),
            ("themes", json!([{"id": "x"}]), "requires a unique safe id"),
        ];
        for (field, value, expected) in cases {
            let error = Manifest::from_value(with(field, value.clone())).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{field}={value}: {error}"
            );
        }
        for (field, value) in [
            ("categories", json!(["channels", "tools"])),
            (
                "backupResources",
                json!([{"disposition": "regenerable", "scope": "agent", "relativePath": "cache/db"}]),
            ),
            (
                "controlUi",
                json!({"entry": "./dist/ui/app.mjs", "styles": ["dist/ui/app.css"]}),
            ),
            (
                "themes",
                json!([{"id": "dark", "name": "Dark", "description": "d", "source": "t.json"}]),
            ),
        ] {
            Manifest::from_value(with(field, value.clone()))
                .unwrap_or_else(|error| panic!("{field}={value}: {error}"));
        }
    }

    #[test]
    fn other_fields_are_normalised_leniently() {
        let manifest = Manifest::from_value(json!({
            "id": " acme ",
            "configSchema": {},
            "name": "  ",
            "kind": ["memory", "bogus", "memory", "context-engine"],
            "channels": "not-a-list",
            "providers": ["acme", " ", 7, " acme-2 "],
            "contracts": {"tools": ["t1"], "speechProviders": [], "toolz": ["x"]},
            "enabledByDefault": "yes",
            "enabledByDefaultOnPlatforms": ["linux", "plan9"],
            "custom": 1
        }))
        .unwrap();
        assert_eq!(manifest.id, "acme");
        assert_eq!(manifest.name, None);
        assert_eq!(
            manifest.kind,
            [PluginKind::Memory, PluginKind::ContextEngine]
        );
        assert!(manifest.channels.is_empty());
        assert_eq!(manifest.providers, ["acme", "acme-2"]);
        assert_eq!(manifest.contracts.len(), 1);
        assert!(!manifest.enabled_by_default);
        assert_eq!(manifest.enabled_by_default_on_platforms, ["linux"]);
        assert_eq!(manifest.ignored_fields, ["custom", "contracts.toolz"]);
        assert!(manifest.declares(ManifestField::Contracts("tools"), "t1"));
        assert!(manifest.declares(ManifestField::TopLevel("providers"), "acme-2"));
        assert!(!manifest.declares(ManifestField::TopLevel("channels"), "acme"));
        assert!(!manifest.declares(ManifestField::Contracts("speechProviders"), "acme"));
    }

    #[test]
    fn the_kind_may_be_a_single_string() {
        let manifest = Manifest::from_value(with("kind", json!("context-engine"))).unwrap();
        assert!(manifest.has_kind(PluginKind::ContextEngine));
    }
}
