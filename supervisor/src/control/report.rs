//! The documented JSON shapes of `outpost plugins list|inspect|validate|doctor --json`
//! (docs/operators.md). Fields are only ever added, never renamed or removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::command::OutpostBlock;
use super::config::ConfigError;
use super::diagnostic::{Code, Diagnostic, Severity};
use super::discovery::Origin;
use super::enablement::Enablement;
use super::inventory::{Inventory, MissingPlugin, PluginRecord, Status};
use super::manifest::PluginKind;
use super::validate::{REDACTED, is_secret_key};
use crate::isolation::{FilesystemSandbox, HostIsolation, PlannedIsolation};
use crate::launch::LaunchSpec;

/// One row of `outpost plugins list --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ListRow {
    /// The plugin id.
    pub id: String,
    /// Human-readable name, if any.
    pub name: Option<String>,
    /// Version, if any.
    pub version: Option<String>,
    /// Where it was found; `null` for a missing plugin.
    pub origin: Option<Origin>,
    /// The state.
    pub status: Status,
    /// Why.
    pub reason: String,
    /// Whether it can run out of process.
    pub runnable: bool,
    /// Why not, when it cannot.
    pub not_runnable_reason: Option<String>,
    /// The identifying file; `null` for a missing plugin.
    pub source: Option<PathBuf>,
    /// The plugin root; `null` for a missing plugin.
    pub root: Option<PathBuf>,
    /// Exclusive kinds.
    pub kind: Vec<PluginKind>,
    /// The source of the copy that won, for a shadowed copy.
    pub shadowed_by: Option<PathBuf>,
    /// For a workspace copy that is not enabled: the source of the copy used instead
    /// (it was passed over and shadows nothing).
    pub passed_over_for: Option<PathBuf>,
}

impl ListRow {
    /// Every discovered plugin in precedence order, then every missing one.
    pub fn all(inventory: &Inventory) -> Vec<Self> {
        inventory
            .plugins
            .iter()
            .map(Self::from_record)
            .chain(inventory.missing.iter().map(Self::from_missing))
            .collect()
    }

    fn from_record(record: &PluginRecord) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            version: record.version.clone(),
            origin: Some(record.origin),
            status: record.status,
            reason: record.reason.clone(),
            runnable: record.runnable(),
            not_runnable_reason: record.not_runnable.clone(),
            source: Some(record.source.clone()),
            root: Some(record.root.clone()),
            kind: record
                .manifest
                .as_ref()
                .map(|manifest| manifest.kind.clone())
                .unwrap_or_default(),
            shadowed_by: record.shadowed_by.clone(),
            passed_over_for: record.passed_over_for.clone(),
        }
    }

    fn from_missing(missing: &MissingPlugin) -> Self {
        Self {
            id: missing.id.clone(),
            name: None,
            version: None,
            origin: None,
            status: Status::Missing,
            reason: missing_reason(missing),
            runnable: false,
            not_runnable_reason: Some("not discovered".to_owned()),
            source: None,
            root: None,
            kind: Vec::new(),
            shadowed_by: None,
            passed_over_for: None,
        }
    }
}

/// Why a missing plugin is listed.
pub(crate) fn missing_reason(missing: &MissingPlugin) -> String {
    format!(
        "referenced by {} but not discovered",
        missing.referenced_by.join(", ")
    )
}

/// `outpost plugins inspect <id> --json` for a discovered plugin.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InspectReport {
    /// The plugin id.
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Summary.
    pub description: Option<String>,
    /// Where it was found.
    pub origin: Origin,
    /// The plugin root.
    pub root: PathBuf,
    /// The identifying file.
    pub source: PathBuf,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The state.
    pub status: Status,
    /// Why.
    pub reason: String,
    /// The enablement decision and every rule consulted (`null` when blocked or broken).
    pub enablement: Option<Enablement>,
    /// Exclusive kinds.
    pub kind: Vec<PluginKind>,
    /// Channel ids owned.
    pub channels: Vec<String>,
    /// Provider ids owned.
    pub providers: Vec<String>,
    /// CLI backend ids owned.
    pub cli_backends: Vec<String>,
    /// Skill directories.
    pub skills: Vec<String>,
    /// The capability contracts (`tools`, `speechProviders`...).
    pub contracts: BTreeMap<String, Vec<String>>,
    /// Catalog categories.
    pub categories: Vec<String>,
    /// `enabledByDefault` (bundled plugins).
    pub enabled_by_default: bool,
    /// Plugins it requires.
    pub requires_plugins: Vec<String>,
    /// The top-level manifest fields present.
    pub manifest_fields: Vec<String>,
    /// A summary of `configSchema` (`null` without a manifest).
    pub config_schema: Option<SchemaSummary>,
    /// The manifest's `outpost` block as checked (`null` when absent or invalid).
    pub outpost: Option<OutpostBlock>,
    /// The resolved launch (`null` when not runnable), with the values of `envSet`
    /// redacted.
    pub launch: Option<LaunchSpec>,
    /// How its sandbox comes out on this host (`null` when not runnable): containment,
    /// the filesystem sandbox (`enforced`, `partial`, `unavailable` or `off`) and, when
    /// `outpost` runs as root, the user.
    pub isolation: Option<PlannedIsolation>,
    /// Whether it can run out of process.
    pub runnable: bool,
    /// Why not.
    pub not_runnable_reason: Option<String>,
    /// The config handed to the plugin, defaults applied, secrets redacted (keys marked
    /// `sensitive` in `uiHints`, and keys such as `apiKey`, `token`, `password`).
    pub config: Map<String, Value>,
    /// The `channels.<id>` config of each channel it declares that the config sets,
    /// by channel id, secrets redacted (`sensitive` in the manifest's
    /// `channelConfigs.<id>.uiHints`, and keys such as `token`).
    pub channel_config: Map<String, Value>,
    /// `hooks.allowPromptInjection`.
    pub allow_prompt_injection: bool,
    /// `hooks.allowConversationAccess`.
    pub allow_conversation_access: Option<bool>,
    /// The source of the copy that won, when this copy is shadowed.
    pub shadowed_by: Option<PathBuf>,
    /// Other copies of the same id, in precedence order.
    pub other_copies: Vec<CopySummary>,
    /// This plugin's diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

/// Another copy of an id.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopySummary {
    /// Where it was found.
    pub origin: Origin,
    /// Its identifying file.
    pub source: PathBuf,
    /// Its state.
    pub status: Status,
    /// Why.
    pub reason: String,
}

/// What a config schema asks for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaSummary {
    /// The root `type`, if given.
    #[serde(rename = "type")]
    pub type_: Option<Value>,
    /// Whether keys beyond `properties` are allowed (`null`: the schema does not say).
    pub additional_properties: Option<bool>,
    /// The top-level properties.
    pub properties: Vec<PropertySummary>,
}

/// One top-level config property.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertySummary {
    /// The key.
    pub name: String,
    /// Its `type`, if given.
    #[serde(rename = "type")]
    pub type_: Option<Value>,
    /// Listed in `required`.
    pub required: bool,
    /// Its `default`, if any (redacted when sensitive).
    pub default: Option<Value>,
    /// Its `description` or the UI hint's label.
    pub description: Option<String>,
    /// Marked `sensitive` in `uiHints`.
    pub sensitive: bool,
}

impl InspectReport {
    /// The report for `id`'s active copy, or `None` when no copy was discovered.
    pub fn new(inventory: &Inventory, id: &str) -> Option<Self> {
        let record = inventory.get(id)?;
        let manifest = record.manifest.as_ref();
        let list = |pick: fn(&super::manifest::Manifest) -> &Vec<String>| {
            manifest.map(pick).cloned().unwrap_or_default()
        };
        let hints = manifest.map(|manifest| &manifest.ui_hints);
        let other_copies = inventory
            .copies(id)
            .filter(|copy| !std::ptr::eq(*copy, record))
            .map(|copy| CopySummary {
                origin: copy.origin,
                source: copy.source.clone(),
                status: copy.status,
                reason: copy.reason.clone(),
            })
            .collect();
        let diagnostics = record
            .diagnostics
            .iter()
            .chain(
                inventory
                    .diagnostics
                    .iter()
                    .filter(|diagnostic| diagnostic.plugin.as_deref() == Some(id)),
            )
            .cloned()
            .collect();
        Some(Self {
            id: record.id.clone(),
            name: record.name.clone(),
            version: record.version.clone(),
            description: manifest.and_then(|manifest| manifest.description.clone()),
            origin: record.origin,
            root: record.root.clone(),
            source: record.source.clone(),
            manifest_path: record.manifest_path.clone(),
            status: record.status,
            reason: record.reason.clone(),
            enablement: record.enablement.clone(),
            kind: manifest
                .map(|manifest| manifest.kind.clone())
                .unwrap_or_default(),
            channels: list(|manifest| &manifest.channels),
            providers: list(|manifest| &manifest.providers),
            cli_backends: list(|manifest| &manifest.cli_backends),
            skills: list(|manifest| &manifest.skills),
            contracts: manifest
                .map(|manifest| manifest.contracts.clone())
                .unwrap_or_default(),
            categories: list(|manifest| &manifest.categories),
            enabled_by_default: manifest.is_some_and(|manifest| manifest.enabled_by_default),
            requires_plugins: list(|manifest| &manifest.requires_plugins),
            manifest_fields: manifest
                .map(|manifest| manifest.raw().keys().cloned().collect())
                .unwrap_or_default(),
            config_schema: manifest
                .map(|manifest| summarize_schema(&manifest.config_schema, &manifest.ui_hints)),
            outpost: record.outpost.clone(),
            launch: record.launch.clone().map(|mut launch| {
                // Fixed values are often credentials; the names are what an operator
                // needs to check.
                for value in launch.env_set.values_mut() {
                    REDACTED.clone_into(value);
                }
                launch
            }),
            isolation: record
                .launch
                .as_ref()
                .map(|launch| PlannedIsolation::new(&launch.sandbox, &crate::isolation::probe())),
            runnable: record.runnable(),
            not_runnable_reason: record.not_runnable.clone(),
            config: redact(&record.config, hints),
            channel_config: record
                .channels
                .iter()
                .map(|(channel, value)| (channel.clone(), redact_channel(record, channel, value)))
                .collect(),
            allow_prompt_injection: record.allow_prompt_injection,
            allow_conversation_access: record.allow_conversation_access,
            shadowed_by: record.shadowed_by.clone(),
            other_copies,
            diagnostics,
        })
    }
}

fn summarize_schema(schema: &Map<String, Value>, hints: &Map<String, Value>) -> SchemaSummary {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|required| required.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| {
                    let hint = hints.get(name);
                    let sensitive = hint
                        .and_then(|hint| hint.get("sensitive"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let description = property
                        .get("description")
                        .or_else(|| hint.and_then(|hint| hint.get("label")))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    PropertySummary {
                        name: name.clone(),
                        type_: property.get("type").cloned(),
                        required: required.contains(&name.as_str()),
                        default: property.get("default").map(|default| {
                            if sensitive || is_secret_key(name) {
                                Value::String(REDACTED.to_owned())
                            } else {
                                default.clone()
                            }
                        }),
                        description,
                        sensitive,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    SchemaSummary {
        type_: schema.get("type").cloned(),
        additional_properties: schema.get("additionalProperties").map(|additional| {
            // A schema for the additional properties allows them.
            additional.as_bool().unwrap_or(true)
        }),
        properties,
    }
}

/// A channel's config with its secrets redacted: paths marked `sensitive` in the
/// manifest's `channelConfigs.<channel>.uiHints` (`*` matches any one key, as in
/// `accounts.*.botToken`), and keys whose names end like a secret's (`botToken`,
/// `signingSecret`, `password`...), since channel configs hold credentials per account.
fn redact_channel(record: &PluginRecord, channel: &str, value: &Value) -> Value {
    redact_channel_value(record.manifest.as_ref(), channel, value)
}

/// The texts of the secret values in a channel's config (as JSON and, for strings, as
/// written), so a message that quotes one can have it replaced.
pub(crate) fn channel_secret_texts(
    manifest: Option<&super::manifest::Manifest>,
    channel: &str,
    value: &Value,
) -> Vec<String> {
    fn collect(original: &Value, redacted: &Value, found: &mut Vec<String>) {
        match (original, redacted) {
            (Value::Object(a), Value::Object(b)) => {
                for (key, member) in a {
                    if let Some(other) = b.get(key) {
                        collect(member, other, found);
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                for (member, other) in a.iter().zip(b) {
                    collect(member, other, found);
                }
            }
            (original, Value::String(text)) if text == REDACTED && original != redacted => {
                found.push(original.to_string());
                if let Value::String(raw) = original {
                    found.push(raw.clone());
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    collect(
        value,
        &redact_channel_value(manifest, channel, value),
        &mut found,
    );
    found.retain(|text| !text.is_empty());
    found.sort_by_key(|text| std::cmp::Reverse(text.len()));
    found
}

fn redact_channel_value(
    manifest: Option<&super::manifest::Manifest>,
    channel: &str,
    value: &Value,
) -> Value {
    let sensitive: Vec<Vec<&str>> = manifest
        .and_then(|manifest| manifest.raw().get("channelConfigs"))
        .and_then(|configs| configs.get(channel))
        .and_then(|declared| declared.get("uiHints"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, hint)| hint.get("sensitive").and_then(Value::as_bool) == Some(true))
        .map(|(path, _)| path.split('.').collect())
        .collect();
    let mut value = value.clone();
    redact_walk(&mut value, &mut Vec::new(), &sensitive);
    value
}

fn redact_walk(value: &mut Value, path: &mut Vec<String>, sensitive: &[Vec<&str>]) {
    const SECRET_ENDINGS: &[&str] = &[
        "token",
        "secret",
        "password",
        "apikey",
        "api_key",
        "privatekey",
        "private_key",
    ];
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for item in items {
                redact_walk(item, path, sensitive);
            }
        }
        return;
    };
    for (key, member) in map.iter_mut() {
        path.push(key.clone());
        let hinted = sensitive.iter().any(|pattern| {
            pattern.len() == path.len()
                && pattern
                    .iter()
                    .zip(path.iter())
                    .all(|(want, have)| *want == "*" || want == have)
        });
        let lower = key.to_ascii_lowercase();
        let named = is_secret_key(key) || SECRET_ENDINGS.iter().any(|end| lower.ends_with(end));
        if (hinted && !member.is_null()) || (named && (member.is_string() || member.is_number())) {
            *member = Value::String(REDACTED.to_owned());
        } else {
            redact_walk(member, path, sensitive);
        }
        path.pop();
    }
}

/// Replaces secret values: keys marked `sensitive` in the UI hints (dotted paths such
/// as `twilio.authToken`), and keys that name secrets.
fn redact(config: &Map<String, Value>, hints: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut value = Value::Object(config.clone());
    if let Some(hints) = hints {
        for (path, hint) in hints {
            if hint.get("sensitive").and_then(Value::as_bool) == Some(true) {
                let pointer = path.split('.').fold(String::new(), |mut pointer, key| {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    pointer
                });
                if let Some(slot) = value.pointer_mut(&pointer)
                    && !slot.is_null()
                {
                    *slot = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
    redact_named(&mut value);
    match value {
        Value::Object(map) => map,
        _ => unreachable!("an object stays an object"),
    }
}

fn redact_named(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if is_secret_key(key) && (member.is_string() || member.is_number()) {
                    *member = Value::String(REDACTED.to_owned());
                } else {
                    redact_named(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_named),
        _ => {}
    }
}

/// The one diagnostic of a config file that cannot be used.
fn unreadable(path: &Path, error: &ConfigError) -> Diagnostic {
    Diagnostic::error(Code::ConfigUnreadable, error.to_string()).file(path)
}

/// `outpost plugins validate --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ValidateReport {
    /// The config file.
    pub config: PathBuf,
    /// No errors (warnings allowed). The exit code is 0 exactly when this is true.
    pub valid: bool,
    /// How many errors.
    pub errors: usize,
    /// How many warnings.
    pub warnings: usize,
    /// Every error and warning, errors first.
    pub problems: Vec<Diagnostic>,
}

impl ValidateReport {
    /// The report for a config file that cannot be read or parsed.
    pub fn unreadable(path: &Path, error: &ConfigError) -> Self {
        Self {
            config: path.to_path_buf(),
            valid: false,
            errors: 1,
            warnings: 0,
            problems: vec![unreadable(path, error)],
        }
    }

    /// The report for an inventory.
    pub fn new(inventory: &Inventory) -> Self {
        let mut problems: Vec<Diagnostic> = inventory
            .all_diagnostics()
            .filter(|diagnostic| diagnostic.severity != Severity::Advisory)
            .cloned()
            .collect();
        problems.sort_by_key(|diagnostic| diagnostic.severity);
        let errors = problems
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
            .count();
        Self {
            config: inventory.config.path.clone(),
            valid: errors == 0,
            errors,
            warnings: problems.len() - errors,
            problems,
        }
    }
}

/// `outpost plugins doctor --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DoctorReport {
    /// The config file.
    pub config: PathBuf,
    /// Nothing needs action: no errors and no blocked candidates. The exit code is 0
    /// exactly when this is true.
    pub ok: bool,
    /// Errors other than blocked candidates.
    pub errors: Vec<Diagnostic>,
    /// Candidates refused by a safety gate.
    pub blocked: Vec<Diagnostic>,
    /// Copies ignored because another copy of the id comes first.
    pub shadowing: Vec<Diagnostic>,
    /// Other warnings.
    pub warnings: Vec<Diagnostic>,
    /// Compatibility and hardening advisories.
    pub advisories: Vec<Diagnostic>,
    /// How many plugins are in each state.
    pub counts: BTreeMap<Status, usize>,
    /// What this host offers to confine plugins (docs/isolation.md).
    pub isolation: HostIsolation,
}

impl DoctorReport {
    /// The report for a config file that cannot be read or parsed.
    pub fn unreadable(path: &Path, error: &ConfigError) -> Self {
        Self {
            config: path.to_path_buf(),
            ok: false,
            errors: vec![unreadable(path, error)],
            blocked: Vec::new(),
            shadowing: Vec::new(),
            warnings: Vec::new(),
            advisories: Vec::new(),
            counts: BTreeMap::new(),
            isolation: crate::isolation::probe(),
        }
    }

    /// The report for an inventory.
    pub fn new(inventory: &Inventory) -> Self {
        let mut report = Self {
            config: inventory.config.path.clone(),
            ok: true,
            errors: Vec::new(),
            blocked: Vec::new(),
            shadowing: Vec::new(),
            warnings: Vec::new(),
            advisories: Vec::new(),
            counts: BTreeMap::new(),
            isolation: crate::isolation::probe(),
        };
        let isolation = isolation_diagnostics(&report.isolation, inventory);
        for diagnostic in inventory.all_diagnostics().chain(&isolation) {
            let section = match (diagnostic.severity, diagnostic.code) {
                (
                    _,
                    Code::EscapesRoot
                    | Code::WorldWritable
                    | Code::SuspiciousOwner
                    | Code::Hardlinked
                    | Code::Uninspectable,
                ) => &mut report.blocked,
                (_, Code::Shadowed) => &mut report.shadowing,
                (Severity::Error, _) => &mut report.errors,
                (Severity::Warning, _) => &mut report.warnings,
                (Severity::Advisory, _) => &mut report.advisories,
            };
            section.push(diagnostic.clone());
        }
        for row in ListRow::all(inventory) {
            *report.counts.entry(row.status).or_default() += 1;
        }
        report.ok = report.errors.is_empty() && report.blocked.is_empty();
        report
    }
}

/// What the host's isolation leaves open for the plugins that will run: a warning when
/// a root supervisor runs plugins as root, an advisory for each kernel feature missing.
fn isolation_diagnostics(host: &HostIsolation, inventory: &Inventory) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let launches: Vec<_> = inventory.launchable().collect();
    if host.running_as_root {
        let as_root: Vec<&str> = launches
            .iter()
            .filter(|(_, launch)| launch.sandbox.user.is_none())
            .map(|(record, _)| record.id.as_str())
            .collect();
        if !as_root.is_empty() {
            found.push(
                Diagnostic::warning(
                    Code::Isolation,
                    format!(
                        "outpost runs as root and no user is configured, so {} run{} as root; set outpost.sandbox.user to an unprivileged user (docs/isolation.md §3)",
                        as_root.join(", "),
                        if as_root.len() == 1 { "s" } else { "" }
                    ),
                )
                .file(&inventory.config.path)
                .path_and_key("outpost.sandbox.user"),
            );
        }
    }
    if launches.iter().any(|(_, launch)| launch.sandbox.contain) && !host.namespaces.available {
        found.push(Diagnostic::advisory(
            Code::Isolation,
            format!(
                "this host refuses PID and mount namespaces ({}): plugins run in their own process group, and a process that leaves it (setsid, a daemon) can outlive them",
                host.namespaces.reason.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    if launches
        .iter()
        .any(|(_, launch)| launch.sandbox.filesystem.is_some())
        && host.filesystem != FilesystemSandbox::Enforced
    {
        found.push(Diagnostic::advisory(
            Code::Isolation,
            format!(
                "the filesystem sandbox is {} here: {}",
                match host.filesystem {
                    FilesystemSandbox::Partial => "partial",
                    _ => "unavailable",
                },
                host.filesystem_detail
                    .as_deref()
                    .unwrap_or("the kernel has no Landlock")
            ),
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_redacted_by_hint_and_by_name() {
        let config = json!({
            "region": "eu",
            "apiKey": "sk-123",
            "twilio": {"authToken": "t", "from": "+1"},
            "servers": [{"password": "p", "host": "h"}]
        });
        let hints = json!({"twilio.authToken": {"sensitive": true}, "region": {"label": "Region"}});
        let redacted = redact(config.as_object().unwrap(), hints.as_object());
        assert_eq!(
            Value::Object(redacted),
            json!({
                "region": "eu",
                "apiKey": REDACTED,
                "twilio": {"authToken": REDACTED, "from": "+1"},
                "servers": [{"password": REDACTED, "host": "h"}]
            })
        );
    }
}
