//! The inventory: every discovered plugin with its manifest, gates, enablement, config
//! and launch, built without running anything.
//!
//! The pipeline, per discovered root: gate the root; gate and read the manifest; gate
//! `package.json` and expand a pack into its entries; check the `outpost` block, find
//! its command and gate its entry; build the supervision policy; compile the config
//! schema. Then, across plugins: the first copy of an id wins (later copies are
//! shadowed); enablement; config validation; the final status; config references to
//! ids nobody has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::command::{self, OutpostBlock, Search, Unlaunchable};
use super::config::{
    self, ChannelConfig, Config, ConfigError, Host, PluginsConfig, Slot, SlotKey, normalize_id,
};
use super::diagnostic::{Code, Diagnostic, Severity, join_path};
use super::discovery::{self, Extensions, FoundRoot, Origin, file_base};
use super::enablement::{self, Cause, ChannelSwitch, Enablement, Subject};
use super::gates::{Block, FileCheck, Gate};
use super::manifest::{MAX_MANIFEST_BYTES, Manifest};
use super::plugin_id;
use super::report::channel_secret_texts;
use super::text::{self, ReadError};
use super::validate::{REDACTED, Schema};
use crate::data::state_dir_name;
use crate::launch::{FsAccess, LaunchSpec, Sandbox};
use crate::policy::{self, Lowered, SupervisionPolicy};
use crate::spec::{Declarations, HookPolicy, PluginSpec};

/// A plugin's state: the one word `outpost plugins list` shows. The states are kept
/// apart on purpose: each calls for a different action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Enabled, safe and valid: the data plane runs it (when it is runnable).
    Enabled,
    /// Found, but the enablement rules (or a higher-precedence copy) turned it off.
    Disabled,
    /// A safety gate refused it; nothing of it runs.
    Blocked,
    /// Enabled, but its config does not match its `configSchema`.
    Invalid,
    /// Config refers to it, but discovery did not find it.
    Missing,
    /// Found, but its manifest, `outpost` block, schema or launch is broken.
    Error,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Blocked => "blocked",
            Self::Invalid => "invalid",
            Self::Missing => "missing",
            Self::Error => "error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything known about one discovered plugin.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PluginRecord {
    /// The manifest id (for a multi-entry pack, `<id>/<entry file base>`); before the
    /// manifest is read, a hint (`package.json` or the directory name).
    pub id: String,
    /// Where it was found.
    pub origin: Origin,
    /// The plugin root (resolved when the gates could resolve it).
    pub root: PathBuf,
    /// The file that identifies this plugin: the file the launch runs, a pack entry,
    /// the file a load path named, or else the manifest.
    pub source: PathBuf,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The manifest, when it was read and accepted.
    pub manifest: Option<Manifest>,
    /// Human-readable name (manifest, else `package.json`).
    pub name: Option<String>,
    /// Version (manifest, else `package.json`).
    pub version: Option<String>,
    /// The state.
    pub status: Status,
    /// Why, in one sentence.
    pub reason: String,
    /// The enablement decision, when enablement was evaluated (not for blocked or
    /// broken plugins).
    pub enablement: Option<Enablement>,
    /// The manifest's `outpost` block, when present and valid.
    pub outpost: Option<OutpostBlock>,
    /// How to launch it; `None` when it cannot run out of process.
    pub launch: Option<LaunchSpec>,
    /// Why `launch` is `None`.
    pub not_runnable: Option<String>,
    /// The config handed to the plugin: `plugins.entries.<id>.config` with the schema's
    /// defaults applied (validated when the plugin is enabled or has config).
    pub config: Map<String, Value>,
    /// `plugins.entries.<id>.hooks.allowPromptInjection` (default true).
    pub allow_prompt_injection: bool,
    /// `plugins.entries.<id>.hooks.allowConversationAccess`, if set.
    pub allow_conversation_access: Option<bool>,
    /// The source of the copy that won, when this one is shadowed.
    pub shadowed_by: Option<PathBuf>,
    /// For a workspace copy that is not enabled: the source of the lower-precedence
    /// copy used instead (a disabled workspace copy shadows nothing).
    pub passed_over_for: Option<PathBuf>,
    /// The config of the channels its manifest declares that `channels` configures,
    /// by channel id as the manifest spells it (unredacted: reports redact it).
    pub channels: Map<String, Value>,
    /// This plugin's own problems.
    pub diagnostics: Vec<Diagnostic>,
    claims: bool,
}

impl PluginRecord {
    /// Whether it can run out of process (has a resolved launch).
    pub fn runnable(&self) -> bool {
        self.launch.is_some()
    }

    /// Whether this copy holds its id: accepted, neither shadowed nor passed over.
    fn is_active_copy(&self) -> bool {
        self.claims && self.shadowed_by.is_none() && self.passed_over_for.is_none()
    }
}

/// An id the config refers to that discovery did not find.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MissingPlugin {
    /// The id, as written.
    pub id: String,
    /// The config keys that name it (`plugins.entries.x`, `plugins.allow`...).
    pub referenced_by: Vec<String>,
}

/// The result of [`load`]: the config, every discovered plugin, and every problem.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Inventory {
    /// The parsed config.
    pub config: Config,
    /// Every discovered plugin, in precedence order (shadowed copies included).
    pub plugins: Vec<PluginRecord>,
    /// Ids the config refers to that were not found.
    pub missing: Vec<MissingPlugin>,
    /// Problems not specific to one plugin record (config file, discovery, references).
    pub diagnostics: Vec<Diagnostic>,
}

impl Inventory {
    /// The active record for `id`: the copy that won precedence, else the first copy
    /// found (blocked or broken).
    pub fn get(&self, id: &str) -> Option<&PluginRecord> {
        self.plugins
            .iter()
            .find(|record| record.id == id && record.is_active_copy())
            .or_else(|| self.plugins.iter().find(|record| record.id == id))
    }

    /// Every record with this id, in precedence order.
    pub fn copies<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a PluginRecord> + 'a {
        self.plugins.iter().filter(move |record| record.id == id)
    }

    /// The plugins the data plane runs: enabled, with a launch.
    pub fn launchable(&self) -> impl Iterator<Item = (&PluginRecord, &LaunchSpec)> {
        self.plugins
            .iter()
            .filter_map(|record| match &record.launch {
                Some(launch) if record.status == Status::Enabled => Some((record, launch)),
                _ => None,
            })
    }

    /// What the data plane needs to run each [`launchable`](Self::launchable) plugin.
    pub fn plugin_specs(&self) -> Vec<PluginSpec> {
        self.launchable()
            .map(|(record, launch)| {
                let operator = self.config.outpost.plugins.get(&normalize_id(&record.id));
                PluginSpec {
                    id: record.id.clone(),
                    launch: launch.clone(),
                    config: record.config.clone(),
                    channels: record.channels.clone(),
                    declarations: record
                        .manifest
                        .as_ref()
                        .map(|manifest| {
                            Declarations::from_manifest(&Value::Object(manifest.raw().clone()))
                        })
                        .unwrap_or_default(),
                    allow_prompt_injection: record.allow_prompt_injection,
                    host_methods: operator
                        .map(|operator| operator.host_methods.clone())
                        .unwrap_or_default(),
                    allow_catch_all_route: operator
                        .is_some_and(|operator| operator.allow_catch_all_route),
                    bundled: record.origin == Origin::Bundled,
                    hooks: {
                        let entry = self.config.plugins.entries.get(&normalize_id(&record.id));
                        HookPolicy {
                            allow_conversation_access: record.allow_conversation_access,
                            timeout_ms: entry.and_then(|entry| entry.hook_timeout_ms),
                            timeouts: entry
                                .map(|entry| entry.hook_timeouts.clone())
                                .unwrap_or_default(),
                        }
                    },
                }
            })
            .collect()
    }

    /// Every diagnostic: the inventory's, then each plugin's.
    pub fn all_diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .chain(self.plugins.iter().flat_map(|record| &record.diagnostics))
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.all_diagnostics()
            .any(|diagnostic| diagnostic.severity == Severity::Error)
    }
}

/// What [`load_with`] reads besides the config file. [`LoadOptions::new`] takes it from
/// the process environment; tests replace fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The config file.
    pub config_path: PathBuf,
    /// `$HOME`: `~` in config paths and the default `outpost.globalDir`.
    pub home: Option<PathBuf>,
    /// `$PATH`, searched for bare command names after `outpost.binPath`.
    pub path: Option<OsString>,
    /// The default `outpost.bundledDir` ([`default_bundled_dir`]).
    pub bundled_dir: Option<PathBuf>,
    /// The uid trusted to own plugin files besides root (the current uid).
    pub trusted_uid: u32,
}

impl LoadOptions {
    /// Options for `config_path` from the process environment.
    pub fn new(config_path: impl Into<PathBuf>) -> Self {
        Self {
            config_path: config_path.into(),
            home: std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from),
            path: std::env::var_os("PATH"),
            bundled_dir: default_bundled_dir(),
            trusted_uid: nix::unistd::getuid().as_raw(),
        }
    }
}

/// Where bundled plugins are by default: `$OUTPOST_BUNDLED_DIR` if set; else
/// `<executable dir>/../share/outpost/plugins` when it exists (an installed outpost,
/// scripts/install.sh); else the repository's `plugins/` when running from a checkout;
/// else that installed place.
pub fn default_bundled_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("OUTPOST_BUNDLED_DIR").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("../share/outpost/plugins")));
    if let Some(installed) = installed.as_ref().filter(|dir| dir.is_dir()) {
        return Some(installed.clone());
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("plugins");
    if let Ok(checkout) = std::fs::canonicalize(checkout)
        && checkout.is_dir()
    {
        return Some(checkout);
    }
    installed
}

/// Loads the config at `config_path` and builds the inventory, with the process
/// environment ([`LoadOptions::new`]). Never runs plugin code.
pub fn load(config_path: &Path) -> Result<Inventory, ConfigError> {
    load_with(&LoadOptions::new(config_path))
}

/// [`load`] with explicit options.
pub fn load_with(options: &LoadOptions) -> Result<Inventory, ConfigError> {
    let host = Host {
        home: options.home.clone(),
        bundled_dir: options.bundled_dir.clone(),
    };
    let (mut config, mut diagnostics) = config::read(&options.config_path, &host)?;
    let found = discovery::discover(&config);
    diagnostics.extend(found.diagnostics);
    let mut drafts: Vec<Draft> = {
        let context = Context {
            config: &config,
            options,
        };
        found
            .roots
            .iter()
            .flat_map(|root| context.examine(root))
            .collect()
    };
    resolve_legacy_ids(&mut config, &drafts, &mut diagnostics);
    let context = Context {
        config: &config,
        options,
    };
    shadow(&mut drafts, &config);
    for draft in &mut drafts {
        context.settle(draft);
    }
    let mut plugins: Vec<PluginRecord> = drafts.into_iter().map(|draft| draft.record).collect();
    let missing = check_references(&config, &plugins, &mut diagnostics);
    assign_channels(&mut plugins);
    check_channels(&config, &plugins, &mut diagnostics);
    advise(&config, &plugins, &mut diagnostics);
    Ok(Inventory {
        config,
        plugins,
        missing,
        diagnostics,
    })
}

struct Context<'a> {
    config: &'a Config,
    options: &'a LoadOptions,
}

/// A record being built, with what later stages need.
struct Draft {
    record: PluginRecord,
    /// A reason the plugin cannot be used whatever the config says.
    broken: Option<String>,
    /// A reason the launch cannot be found on this machine (matters only when enabled).
    unlaunchable: Option<String>,
    /// Why no supervision policy could be built (matters only when enabled: a disabled
    /// plugin needs none, and stays `disabled`).
    no_policy: Option<Diagnostic>,
    schema: Option<Schema>,
}

/// A warning about something the plugin's manifest asks for, at `path` in its file.
fn manifest_warning(draft: &mut Draft, code: Code, message: String, path: &str) {
    let diagnostic = Diagnostic::warning(code, message)
        .plugin(&draft.record.id)
        .file(&draft.record.manifest_path)
        .path_and_key(path);
    draft.record.diagnostics.push(diagnostic);
}

impl Context<'_> {
    fn record(&self, found: &FoundRoot, id: String, root: PathBuf) -> PluginRecord {
        let manifest_path = root.join(&self.config.outpost.manifest_name);
        PluginRecord {
            id,
            origin: found.origin,
            source: manifest_path.clone(),
            manifest_path,
            root,
            manifest: None,
            name: found
                .package
                .as_ref()
                .and_then(|package| package.name.clone()),
            version: found
                .package
                .as_ref()
                .and_then(|package| package.version.clone()),
            status: Status::Error,
            reason: String::new(),
            enablement: None,
            outpost: None,
            launch: None,
            not_runnable: None,
            config: Map::new(),
            allow_prompt_injection: true,
            allow_conversation_access: None,
            shadowed_by: None,
            passed_over_for: None,
            channels: Map::new(),
            diagnostics: Vec::new(),
            claims: false,
        }
    }

    fn blocked(mut record: PluginRecord, block: &Block) -> PluginRecord {
        record.diagnostics.push(block.diagnostic(&record.id));
        record.status = Status::Blocked;
        record.reason = block.to_string();
        record.not_runnable = Some("blocked by a safety gate".to_owned());
        record
    }

    fn failed(mut record: PluginRecord, code: Code, file: &Path, reason: String) -> PluginRecord {
        record.diagnostics.push(
            Diagnostic::error(code, reason.clone())
                .plugin(&record.id)
                .file(file),
        );
        record.status = Status::Error;
        record.reason = reason;
        record.not_runnable = Some("the plugin is broken (see its diagnostics)".to_owned());
        record
    }

    /// Gates one root and reads its manifest; returns its records (several for a pack),
    /// finished when the root is blocked or broken, drafts otherwise.
    fn examine(&self, found: &FoundRoot) -> Vec<Draft> {
        let gate = Gate {
            origin: found.origin,
            uid: self.options.trusted_uid,
        };
        let hint = found.id_hint();
        let root = match gate.root(&found.root) {
            Ok(root) => root,
            Err(block) => {
                let record = self.record(found, hint, found.root.clone());
                return vec![done(Self::blocked(record, &block))];
            }
        };
        if let Some(container) = &found.container
            && !root.starts_with(container)
        {
            let block = Block::EscapesRoot {
                what: "bundled plugin directory",
                path: found.root.clone(),
                real: Some(root.clone()),
                root: container.clone(),
            };
            let record = self.record(found, hint, found.root.clone());
            return vec![done(Self::blocked(record, &block))];
        }
        let record = self.record(found, hint.clone(), root.clone());
        let manifest_name = &self.config.outpost.manifest_name;
        let manifest_path = match gate.file("manifest", &root, Path::new(manifest_name)) {
            FileCheck::Ok(path) => path,
            FileCheck::Blocked(block) => return vec![done(Self::blocked(record, &block))],
            FileCheck::NotAFile(path) => {
                let reason = format!("{} is {}", path.display(), ReadError::NotAFile);
                return vec![done(Self::failed(
                    record,
                    Code::ManifestInvalid,
                    &path,
                    reason,
                ))];
            }
            FileCheck::Missing(path) => {
                let reason = format!(
                    "no {manifest_name} in {}: every plugin root needs a manifest with `id` and `configSchema`",
                    root.display()
                );
                return vec![done(Self::failed(
                    record,
                    Code::ManifestMissing,
                    &path,
                    reason,
                ))];
            }
        };
        let manifest = match read_manifest(&manifest_path) {
            Ok(manifest) => manifest,
            Err(reason) => {
                return vec![done(Self::failed(
                    record,
                    Code::ManifestInvalid,
                    &manifest_path,
                    reason,
                ))];
            }
        };
        let extensions = found
            .package
            .as_ref()
            .map_or(&Extensions::None, |package| &package.extensions);
        if *extensions != Extensions::None {
            match gate.file("package.json", &root, Path::new("package.json")) {
                FileCheck::Ok(_) => {}
                FileCheck::Blocked(block) => {
                    let mut record = record;
                    record.id.clone_from(&manifest.id);
                    return vec![done(Self::blocked(record, &block))];
                }
                FileCheck::Missing(path) | FileCheck::NotAFile(path) => {
                    let mut record = record;
                    record.id.clone_from(&manifest.id);
                    let reason = format!("{} vanished while it was read", path.display());
                    return vec![done(Self::failed(record, Code::PackInvalid, &path, reason))];
                }
            }
        }
        match extensions {
            Extensions::None => {
                let mut record = record;
                record.id.clone_from(&manifest.id);
                if let Some(named) = &found.named_file {
                    let relative = named.strip_prefix(&found.root).unwrap_or(named);
                    match gate.file("entry", &root, relative) {
                        FileCheck::Ok(path) => record.source = path,
                        FileCheck::Blocked(block) => {
                            return vec![done(Self::blocked(record, &block))];
                        }
                        FileCheck::Missing(path) | FileCheck::NotAFile(path) => {
                            let reason = format!("{} is not a readable file", path.display());
                            return vec![done(Self::failed(
                                record,
                                Code::EntryMissing,
                                &path,
                                reason,
                            ))];
                        }
                    }
                }
                vec![self.draft(record, manifest, &manifest_path, &root, gate, false)]
            }
            Extensions::Invalid(message) => {
                let mut record = record;
                record.id.clone_from(&manifest.id);
                let file = root.join("package.json");
                vec![done(Self::failed(
                    record,
                    Code::PackInvalid,
                    &file,
                    message.clone(),
                ))]
            }
            Extensions::List(entries) => {
                self.pack(&record, &manifest, &manifest_path, &root, gate, entries)
            }
        }
    }

    /// One record per pack entry: the manifest id is authoritative; several entries
    /// are `<id>/<entry file base>`; entries whose ids collide are refused.
    fn pack(
        &self,
        template: &PluginRecord,
        manifest: &Manifest,
        manifest_path: &Path,
        root: &Path,
        gate: Gate,
        entries: &[String],
    ) -> Vec<Draft> {
        // OpenClaw falls back to package.json and the directory name when there is no
        // manifest id; here the manifest is required, so its id always decides.
        let multi = entries.len() > 1;
        let base_id = &manifest.id;
        let mut by_id: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        let ids: Vec<String> = entries
            .iter()
            .map(|entry| {
                let id = if multi {
                    format!("{base_id}/{}", file_base(entry))
                } else {
                    base_id.clone()
                };
                by_id.entry(id.clone()).or_default().push(entry);
                id
            })
            .collect();
        let mut drafts = Vec::new();
        for (entry, id) in entries.iter().zip(ids) {
            let mut record = template.clone();
            record.id.clone_from(&id);
            let colliding = &by_id[&id];
            if colliding.len() > 1 {
                if colliding[0] == entry {
                    let names: Vec<&str> = colliding.iter().map(|entry| entry.as_str()).collect();
                    let reason = format!(
                        "package.json openclaw.extensions entries {} all derive the id `{id}`; rename the files to unique base names",
                        names.join(", ")
                    );
                    let file = root.join("package.json");
                    drafts.push(done(Self::failed(record, Code::PackInvalid, &file, reason)));
                }
                continue;
            }
            if multi && let Err(problem) = plugin_id::check_part(&file_base(entry)) {
                record.id = plugin_id::printable(&id);
                let reason = format!(
                    "package.json openclaw.extensions entry \"{}\" would give the plugin id \"{}\", whose part after `/` {problem}; rename the file",
                    plugin_id::printable(entry),
                    record.id,
                );
                let file = root.join("package.json");
                drafts.push(done(Self::failed(record, Code::PackInvalid, &file, reason)));
                continue;
            }
            match gate.file("pack entry", root, Path::new(entry)) {
                FileCheck::Ok(path) => record.source = path,
                FileCheck::Blocked(block) => {
                    drafts.push(done(Self::blocked(record, &block)));
                    continue;
                }
                FileCheck::Missing(path) | FileCheck::NotAFile(path) => {
                    record.diagnostics.push(
                        Diagnostic::advisory(
                            Code::EntryMissing,
                            format!(
                                "pack entry `{entry}` not found at {}; OpenClaw loads built entries, Outpost runs the manifest's `outpost` block",
                                path.display()
                            ),
                        )
                        .plugin(&id)
                        .file(root.join("package.json")),
                    );
                    record.source = path;
                }
            }
            drafts.push(self.draft(record, manifest.clone(), manifest_path, root, gate, multi));
        }
        drafts
    }

    /// The stages that need an accepted manifest: the `outpost` block, the launch, the
    /// policy, the schema.
    fn draft(
        &self,
        mut record: PluginRecord,
        manifest: Manifest,
        manifest_path: &Path,
        root: &Path,
        gate: Gate,
        multi_entry_pack: bool,
    ) -> Draft {
        record.manifest_path = manifest_path.to_path_buf();
        if record.source == record.root.join(&self.config.outpost.manifest_name) {
            record.source = manifest_path.to_path_buf();
        }
        if manifest.name.is_some() {
            record.name.clone_from(&manifest.name);
        }
        if manifest.version.is_some() {
            record.version.clone_from(&manifest.version);
        }
        record.claims = true;
        let mut draft = Draft {
            record,
            broken: None,
            no_policy: None,
            unlaunchable: None,
            schema: None,
        };
        let id = manifest.id.clone();
        match Schema::compile(&manifest.config_schema) {
            Ok(schema) => draft.schema = Some(schema.with_hints(&manifest.ui_hints)),
            Err(error) => {
                let reason = format!("its configSchema is not a usable JSON Schema: {error}");
                draft.record.diagnostics.push(
                    Diagnostic::error(Code::SchemaInvalid, reason.clone())
                        .plugin(&draft.record.id)
                        .file(manifest_path)
                        .path_and_key("configSchema"),
                );
                draft.broken = Some(reason);
            }
        }
        let block = match &manifest.outpost {
            None => {
                draft.record.not_runnable = Some(
                    "no `outpost` block in the manifest: an OpenClaw plugin that Outpost cannot run out of process".to_owned(),
                );
                None
            }
            Some(value) => match command::parse_block(value) {
                Ok(block) => Some(block),
                Err(problems) => {
                    let count = problems.len();
                    for (path, message) in problems {
                        draft.record.diagnostics.push(
                            Diagnostic::error(Code::LaunchSpecInvalid, message)
                                .plugin(&draft.record.id)
                                .file(manifest_path)
                                .path_and_key(&path),
                        );
                    }
                    let reason = format!(
                        "its manifest's `outpost` block has {count} problem{} (see its diagnostics)",
                        plural(count)
                    );
                    draft.broken.get_or_insert(reason);
                    draft.record.not_runnable =
                        Some("the manifest's `outpost` block is invalid".to_owned());
                    None
                }
            },
        };
        if let Some(block) = &block {
            if multi_entry_pack {
                draft.record.not_runnable = Some(
                    "an entry of a multi-entry pack: its entries share one `outpost` block, and Outpost runs one process per manifest; give each plugin its own root".to_owned(),
                );
            } else {
                self.plan_launch(&mut draft, block, root, gate, &id, manifest_path);
            }
        }
        draft.record.outpost = block;
        draft.record.manifest = Some(manifest);
        draft
    }

    fn plan_launch(
        &self,
        draft: &mut Draft,
        block: &OutpostBlock,
        root: &Path,
        gate: Gate,
        id: &str,
        manifest_path: &Path,
    ) {
        let search = Search {
            bin_path: &self.config.outpost.bin_path,
            path_env: self.options.path.as_deref(),
        };
        let resolved = match command::resolve(block, root, gate, search) {
            Ok(resolved) => resolved,
            Err(Unlaunchable::Blocked(block)) => {
                draft
                    .record
                    .diagnostics
                    .push(block.diagnostic(&draft.record.id));
                draft.record.claims = false;
                draft.record.status = Status::Blocked;
                draft.record.reason = block.to_string();
                draft.record.not_runnable = Some("blocked by a safety gate".to_owned());
                return;
            }
            Err(Unlaunchable::Unavailable(reason)) => {
                draft.record.not_runnable = Some(reason.clone());
                draft.unlaunchable = Some(reason);
                return;
            }
        };
        if let Some(entry) = &resolved.entry {
            draft.record.source.clone_from(entry);
        }
        let operator = self.config.outpost.plugins.get(&normalize_id(id));
        // What the manifest asks for, within what a manifest may ask for.
        let (manifest_policy, lowered) = policy::within_manifest_bounds(&block.policy);
        for Lowered { path, asked, used } in lowered {
            let message = format!(
                "the manifest asks for {path} {asked}, beyond what a manifest may ask for; {used} is used (the operator can set another value in outpost.plugins.{}.{path})",
                draft.record.id
            );
            manifest_warning(
                draft,
                Code::InvalidValue,
                message,
                &format!("outpost.{path}"),
            );
        }
        let policy = match (&self.config.outpost.defaults, operator.map(|o| &o.policy)) {
            (None, _) => Err(format!(
                "no supervision policy: `outpost.defaults` in {} is invalid (see the config diagnostics)",
                self.config.path.display()
            )),
            (_, Some(None)) => Err(format!(
                "no supervision policy: `outpost.plugins.{}` in {} is invalid (see the config diagnostics)",
                operator.map_or(id, |o| o.key.as_str()),
                self.config.path.display()
            )),
            (Some(defaults), operator_layer) => {
                let empty = Value::Object(Map::new());
                let operator_layer = operator_layer.and_then(Option::as_ref).unwrap_or(&empty);
                SupervisionPolicy::from_layers([defaults, &manifest_policy, operator_layer]).map_err(
                    |error| {
                        format!(
                            "the supervision policy layers (outpost.defaults, {} `outpost`, outpost.plugins.{id}) do not combine: {error}",
                            manifest_path.display()
                        )
                    },
                )
            }
        };
        let policy = match policy {
            Ok(policy) => policy,
            Err(reason) => {
                draft.no_policy = Some(
                    Diagnostic::error(Code::PolicyInvalid, reason)
                        .plugin(&draft.record.id)
                        .file(&self.config.path),
                );
                draft.record.not_runnable = Some("no valid supervision policy".to_owned());
                return;
            }
        };
        // The supervisor's environment holds the operator's secrets: a manifest names
        // the variables it wants, and gets those the operator granted too (or the
        // harmless ones in SAFE_PASSTHROUGH).
        let granted: &[String] = operator.map_or(&[], |operator| &operator.env.passthrough);
        let mut env_passthrough = Vec::new();
        for name in &block.env.passthrough {
            if granted.contains(name) || SAFE_PASSTHROUGH.contains(&name.as_str()) {
                env_passthrough.push(name.clone());
            } else {
                let message = format!(
                    "the manifest asks for {name} from the supervisor's environment; it is not passed until the operator grants it in outpost.plugins.{}.env.passthrough",
                    draft.record.id
                );
                manifest_warning(
                    draft,
                    Code::EnvNotGranted,
                    message,
                    "outpost.env.passthrough",
                );
            }
        }
        for name in granted {
            if !env_passthrough.contains(name) {
                env_passthrough.push(name.clone());
            }
        }
        let mut env_set = block.env.set.clone();
        if let Some(operator) = operator {
            env_set.extend(operator.env.set.clone());
        }
        draft.record.launch = Some(
            LaunchSpec::new(resolved.program, root)
                .with_args(block.args.clone())
                .with_policy(policy),
        );
        let sandbox = self.plan_sandbox(draft, block, root, id);
        if let Some(launch) = &mut draft.record.launch {
            launch.env_passthrough = env_passthrough;
            launch.env_set = env_set;
            launch.sandbox = sandbox;
        }
    }

    /// The plugin's sandbox: `outpost.sandbox`, then `outpost.plugins.<id>.sandbox`.
    ///
    /// The manifest's `outpost.filesystem` only asks: like environment, what a plugin
    /// reaches beyond its root is the operator's to grant, so a path the operator's
    /// grants do not cover is a warning saying which key to set, and stays closed.
    fn plan_sandbox(
        &self,
        draft: &mut Draft,
        block: &OutpostBlock,
        root: &Path,
        id: &str,
    ) -> Sandbox {
        let settings = &self.config.outpost.sandbox;
        let operator = self.config.outpost.plugins.get(&normalize_id(id));
        let grants = operator.map(|o| o.sandbox.clone()).unwrap_or_default();
        let key = format!(
            "outpost.plugins.{}.sandbox",
            operator.map_or(id, |operator| operator.key.as_str())
        );
        let filesystem_on = grants.filesystem.unwrap_or(settings.filesystem);
        let mut problems: Vec<(Code, String, PathBuf, String)> = Vec::new();
        if filesystem_on {
            let covered =
                |path: &Path, by: &[PathBuf]| by.iter().any(|grant| path.starts_with(grant));
            let home = self.options.home.as_deref();
            for raw in &block.filesystem.read {
                let path = lexical(&super::config::resolve_path(raw, root, home));
                if !(path.starts_with(root)
                    || covered(&path, &grants.read)
                    || covered(&path, &grants.write))
                {
                    problems.push(not_granted("read", &path, &key, &draft.record));
                }
            }
            for raw in &block.filesystem.write {
                let path = lexical(&super::config::resolve_path(raw, root, home));
                if !covered(&path, &grants.write) {
                    problems.push(not_granted("write", &path, &key, &draft.record));
                }
            }
            for (which, paths) in [("read", &grants.read), ("write", &grants.write)] {
                for path in paths {
                    let config = &self.config.path;
                    if config.starts_with(path) {
                        problems.push((
                            Code::FsNotGranted,
                            format!(
                                "{} holds the config file {} (every plugin's secrets): the plugin can read them; grant a narrower path",
                                path.display(),
                                config.display()
                            ),
                            config.clone(),
                            format!("{key}.{which}"),
                        ));
                    }
                    if std::fs::symlink_metadata(path).is_err() {
                        problems.push((
                            Code::InvalidValue,
                            format!(
                                "{} does not exist, so the plugin cannot start; create it or remove it from {key}.{which}",
                                path.display()
                            ),
                            config.clone(),
                            format!("{key}.{which}"),
                        ));
                    }
                }
            }
        }
        for (code, message, file, path) in problems {
            draft.record.diagnostics.push(
                Diagnostic::warning(code, message)
                    .plugin(&draft.record.id)
                    .file(&file)
                    .path_and_key(&path),
            );
        }
        let filesystem = filesystem_on.then(|| {
            let mut access = FsAccess::default();
            access.read.clone_from(&grants.read);
            access.write.clone_from(&grants.write);
            access.state_dir = settings
                .state_dir
                .as_ref()
                .map(|base| base.join(state_dir_name(id)));
            access
        });
        Sandbox::default()
            .with_contain(grants.contain.unwrap_or(settings.contain))
            .with_filesystem(filesystem)
            .with_user(grants.user.or_else(|| settings.user.clone()))
    }

    /// Enablement, config validation and the final status of one record.
    fn settle(&self, draft: &mut Draft) {
        let record = &mut draft.record;
        // Blocked, broken before its manifest was accepted, or refused for its id.
        if record.status == Status::Blocked || record.manifest.is_none() || !record.claims {
            return;
        }
        if record.shadowed_by.is_some() {
            record.status = Status::Disabled;
            record.reason = record
                .enablement
                .as_ref()
                .map(|enablement| enablement.reason.clone())
                .unwrap_or_default();
            return;
        }
        let manifest = record.manifest.as_ref().expect("checked above");
        let decision = enablement::decide(
            subject(record, manifest, &self.config.channels),
            &self.config.plugins,
        );
        let mut config_problems = self.channel_configs(record, decision.enabled);
        let entry = self.config.plugins.entries.get(&normalize_id(&record.id));
        record.allow_prompt_injection = entry
            .and_then(|entry| entry.allow_prompt_injection)
            .unwrap_or(true);
        record.allow_conversation_access = entry.and_then(|entry| entry.allow_conversation_access);
        let entry_config = entry.and_then(|entry| entry.config.as_ref());
        let entry_key = entry.map_or(record.id.as_str(), |entry| entry.key.as_str());
        if let Some(schema) = &draft.schema {
            if decision.enabled || entry_config.is_some() {
                let (config, problems) = schema.check(entry_config);
                record.config = config;
                config_problems += problems.len();
                let base = format!("plugins.entries.{entry_key}.config");
                // A disabled plugin's config is kept and still checked, but only warned
                // about: it does not run, and enabling it again is when it must be right.
                let (report, suffix): (fn(Code, String) -> Diagnostic, _) = if decision.enabled {
                    (Diagnostic::error, "")
                } else {
                    (
                        Diagnostic::warning,
                        " (the plugin is disabled; fix this before enabling it)",
                    )
                };
                for problem in problems {
                    let mut diagnostic =
                        report(Code::ConfigInvalid, format!("{}{suffix}", problem.message))
                            .plugin(&record.id)
                            .file(&self.config.path)
                            .path(join_path(&base, &problem.path));
                    if let Some(key) = problem.key {
                        diagnostic = diagnostic.key(key);
                    }
                    record.diagnostics.push(diagnostic);
                }
            } else {
                record.config = entry_config.cloned().unwrap_or_default();
            }
        }
        if !decision.enabled && entry_config.is_some() {
            record.diagnostics.push(
                Diagnostic::warning(
                    Code::DisabledWithConfig,
                    format!(
                        "disabled ({}) but has config; the config is kept so enabling it again is not destructive",
                        decision.reason
                    ),
                )
                .plugin(&record.id)
                .file(&self.config.path)
                .path_and_key(&format!("plugins.entries.{entry_key}")),
            );
        }
        if decision.cause == Cause::SlotTaken {
            record.diagnostics.push(
                Diagnostic::warning(Code::Slot, format!("disabled: {}", decision.reason))
                    .plugin(&record.id)
                    .file(&self.config.path),
            );
        }
        (record.status, record.reason) = if let Some(broken) = &draft.broken {
            (Status::Error, broken.clone())
        } else if !decision.enabled {
            let reason = match &record.passed_over_for {
                Some(used) => format!(
                    "{}; passed over: it shadows nothing, the copy at {} is used",
                    decision.reason,
                    used.display()
                ),
                None => decision.reason.clone(),
            };
            (Status::Disabled, reason)
        } else if config_problems > 0 {
            (
                Status::Invalid,
                format!(
                    "its config has {config_problems} problem{} against its configSchema or channel schema (see its diagnostics)",
                    plural(config_problems)
                ),
            )
        } else if let Some(no_policy) = draft.no_policy.take() {
            let reason = no_policy.message.clone();
            record.diagnostics.push(no_policy);
            (Status::Error, reason)
        } else if let Some(unlaunchable) = &draft.unlaunchable {
            record.diagnostics.push(
                Diagnostic::error(Code::CommandUnavailable, unlaunchable.clone())
                    .plugin(&record.id)
                    .file(&record.manifest_path)
                    .path_and_key("outpost.command"),
            );
            (Status::Error, unlaunchable.clone())
        } else {
            if record.launch.is_none()
                && let Some(why) = &record.not_runnable
            {
                record.diagnostics.push(
                    Diagnostic::advisory(Code::NotRunnable, format!("enabled, but {why}"))
                        .plugin(&record.id)
                        .file(&record.manifest_path),
                );
            }
            (Status::Enabled, decision.reason.clone())
        };
        record.enablement = Some(decision);
    }
}

impl Context<'_> {
    /// Fills `record.channels` with the `channels.<id>` of each channel its manifest
    /// declares, and checks each against the manifest's `channelConfigs.<id>.schema`
    /// when it has one. Returns the number of problems found (errors when `enabled`,
    /// warnings otherwise, as for the plugin's own config).
    fn channel_configs(&self, record: &mut PluginRecord, enabled: bool) -> usize {
        let Some(manifest) = &record.manifest else {
            return 0;
        };
        let mut problems_found = 0;
        let mut diagnostics = Vec::new();
        let mut channels = Map::new();
        for id in &manifest.channels {
            let Some(channel) = self.config.channels.get(&normalize_id(id)) else {
                continue;
            };
            channels.insert(id.clone(), channel.value.clone());
            let declared = manifest
                .raw()
                .get("channelConfigs")
                .and_then(|configs| configs.get(id))
                .and_then(Value::as_object);
            let Some(schema) = declared
                .and_then(|declared| declared.get("schema"))
                .and_then(Value::as_object)
            else {
                continue;
            };
            let schema = match Schema::compile(schema) {
                Ok(schema) => schema,
                Err(error) => {
                    diagnostics.push(
                        Diagnostic::advisory(
                            Code::SchemaInvalid,
                            format!(
                                "channelConfigs.{id}.schema is not a usable JSON Schema, so channels.{} is not checked: {error}",
                                channel.key
                            ),
                        )
                        .plugin(&record.id)
                        .file(&record.manifest_path),
                    );
                    continue;
                }
            };
            let hints = declared
                .and_then(|declared| declared.get("uiHints"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let schema = schema.with_hints(&hints);
            let (_, problems) = schema.check(channel.value.as_object());
            problems_found += problems.len();
            let (report, suffix): (fn(Code, String) -> Diagnostic, _) = if enabled {
                (Diagnostic::error, "")
            } else {
                (
                    Diagnostic::warning,
                    " (the plugin is disabled; fix this before enabling it)",
                )
            };
            let base = format!("channels.{}", channel.key);
            let secrets = channel_secret_texts(Some(manifest), id, &channel.value);
            for problem in problems {
                // Channel configs hold credentials under names the plugin chooses
                // (`botToken`): a secret a message quotes is replaced.
                let message = secrets.iter().fold(problem.message, |message, secret| {
                    message.replace(secret.as_str(), REDACTED)
                });
                let mut diagnostic = report(
                    Code::ChannelConfigInvalid,
                    format!(
                        "{message}{suffix} (the schema is channelConfigs.{id}.schema in {})",
                        record.manifest_path.display()
                    ),
                )
                .plugin(&record.id)
                .file(&self.config.path)
                .path(join_path(&base, &problem.path));
                if let Some(key) = problem.key {
                    diagnostic = diagnostic.key(key);
                }
                diagnostics.push(diagnostic);
            }
        }
        record.channels = channels;
        record.diagnostics.extend(diagnostics);
        if enabled { problems_found } else { 0 }
    }
}

/// What enablement needs to know about `record`.
fn subject<'a>(
    record: &'a PluginRecord,
    manifest: &'a Manifest,
    channels: &'a BTreeMap<String, ChannelConfig>,
) -> Subject<'a> {
    let configured: Vec<&ChannelConfig> = manifest
        .channels
        .iter()
        .filter_map(|id| channels.get(&normalize_id(id)))
        .collect();
    let channel = match configured.iter().find(|channel| channel.wants_plugin()) {
        Some(on) => ChannelSwitch::On(&on.key),
        None => configured
            .first()
            .map_or(ChannelSwitch::Unset, |off| ChannelSwitch::Off(&off.key)),
    };
    Subject {
        id: &record.id,
        origin: record.origin,
        kind: &manifest.kind,
        default_on: manifest.enabled_by_default_here(),
        channel,
    }
}

fn done(record: PluginRecord) -> Draft {
    Draft {
        record,
        broken: None,
        no_policy: None,
        unlaunchable: None,
        schema: None,
    }
}

/// Variables a manifest may take from the supervisor's environment without the
/// operator's grant: where trusted certificates are, nothing secret.
pub const SAFE_PASSTHROUGH: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
];

/// The warning for a path a manifest asks to `which` (read or write) that the
/// operator's grants under `key` do not cover.
fn not_granted(
    which: &str,
    path: &Path,
    key: &str,
    record: &PluginRecord,
) -> (Code, String, PathBuf, String) {
    (
        Code::FsNotGranted,
        format!(
            "the manifest asks to {which} {}; the sandbox keeps it closed until the operator adds it to {key}.{which}",
            path.display()
        ),
        record.manifest_path.clone(),
        format!("outpost.filesystem.{which}"),
    )
}

/// `path` with `.` and `..` folded away, without asking the filesystem.
fn lexical(path: &Path) -> PathBuf {
    let mut folded = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                folded.pop();
            }
            other => folded.push(other),
        }
    }
    folded
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn read_manifest(path: &Path) -> Result<Manifest, String> {
    let text = text::read_bounded(path, MAX_MANIFEST_BYTES).map_err(|error| match error {
        ReadError::Io(error) => format!("cannot read the manifest: {error}"),
        other => format!("the manifest is {other}"),
    })?;
    Manifest::parse(&text).map_err(|error| match error {
        super::manifest::ManifestError::Syntax { .. } => {
            format!("{}:{error}", path.display())
        }
        other => format!("invalid manifest: {other}"),
    })
}

/// The first copy of each id wins; later copies are shadowed, with a warning. Blocked
/// and broken roots never claim an id, and neither does a workspace copy that is not
/// enabled (the seed: a workspace copy shadows a bundled one only when it is enabled or
/// allowlisted): it is passed over, and the next copy is used.
///
/// Ids are compared as config keys are, ignoring case: a copy whose id differs from the
/// winner's only in case is not shadowed but refused, since it would receive the
/// winner's config entry, allowlist place and grants.
fn shadow(drafts: &mut [Draft], config: &Config) {
    let mut winners: BTreeMap<String, (String, PathBuf, Origin)> = BTreeMap::new();
    let mut passed_over = Vec::new();
    for (index, draft) in drafts.iter_mut().enumerate() {
        let record = &mut draft.record;
        if !record.claims || record.status == Status::Blocked {
            continue;
        }
        if record.origin == Origin::Workspace
            && !winners.contains_key(&normalize_id(&record.id))
            && let Some(manifest) = &record.manifest
            && !enablement::decide(subject(record, manifest, &config.channels), &config.plugins)
                .enabled
        {
            passed_over.push(index);
            continue;
        }
        match winners.get(&normalize_id(&record.id)) {
            None => {
                winners.insert(
                    normalize_id(&record.id),
                    (record.id.clone(), record.source.clone(), record.origin),
                );
            }
            Some((id, source, origin)) if *id != record.id => {
                let reason = format!(
                    "its id `{}` differs only in case from `{id}`, found first in the {origin} copy at {}; config matches ids ignoring case, so this one would receive that plugin's config and grants. Give one of them another id",
                    record.id,
                    source.display()
                );
                record.diagnostics.push(
                    Diagnostic::error(Code::IdCaseCollision, reason.clone())
                        .plugin(&record.id)
                        .file(&record.manifest_path)
                        .path_and_key("id"),
                );
                record.claims = false;
                record.status = Status::Error;
                record.reason = reason;
                record.not_runnable = Some("the plugin is broken (see its diagnostics)".to_owned());
            }
            Some((_, source, origin)) => {
                let by = format!(
                    "shadowed by the {origin} copy at {}, which comes first in discovery order",
                    source.display()
                );
                record.diagnostics.push(
                    Diagnostic::warning(
                        Code::Shadowed,
                        format!(
                            "{} ({}) is ignored: {by}",
                            record.root.display(),
                            record.origin
                        ),
                    )
                    .plugin(&record.id)
                    .file(&record.source),
                );
                record.shadowed_by = Some(source.clone());
                record.enablement = Some(Enablement::shadowed(by));
                record
                    .not_runnable
                    .get_or_insert_with(|| "shadowed".to_owned());
            }
        }
    }
    for index in passed_over {
        let record = &mut drafts[index].record;
        let Some((_, source, origin)) = winners.get(&normalize_id(&record.id)) else {
            continue;
        };
        record.diagnostics.push(
            Diagnostic::advisory(
                Code::PassedOver,
                format!(
                    "{} (workspace) is not enabled, so it does not shadow the {origin} copy at {}, which is used; enable the workspace copy (plugins.entries.{}.enabled or plugins.allow) to use it instead",
                    record.root.display(),
                    source.display(),
                    record.id
                ),
            )
            .plugin(&record.id)
            .file(&record.source),
        );
        record.passed_over_for = Some(source.clone());
    }
}

/// `legacyPluginIds`: a `plugins.entries.<old-id>` applies to the plugin whose manifest
/// lists `old-id` as a legacy id, unless an entry under its own id exists (then the
/// legacy entry is ignored, with a warning).
fn resolve_legacy_ids(config: &mut Config, drafts: &[Draft], diagnostics: &mut Vec<Diagnostic>) {
    let plugins: &mut PluginsConfig = &mut config.plugins;
    let current: HashSet<String> = drafts
        .iter()
        .filter(|draft| draft.record.claims)
        .map(|draft| normalize_id(&draft.record.id))
        .collect();
    for draft in drafts {
        let Some(manifest) = &draft.record.manifest else {
            continue;
        };
        let id = normalize_id(&manifest.id);
        for legacy in &manifest.legacy_plugin_ids {
            let old = normalize_id(legacy);
            if old == id || current.contains(&old) {
                continue;
            }
            let Some(entry) = plugins.entries.get(&old) else {
                continue;
            };
            let path = format!("plugins.entries.{}", entry.key);
            if plugins.entries.contains_key(&id) {
                diagnostics.push(
                    Diagnostic::warning(
                        Code::LegacyId,
                        format!(
                            "`{}` is a legacy id of plugin `{}`, which has an entry of its own; this one is ignored (remove it)",
                            entry.key, manifest.id
                        ),
                    )
                    .plugin(&manifest.id)
                    .file(&config.path)
                    .path_and_key(&path),
                );
                plugins.entries.remove(&old);
                continue;
            }
            diagnostics.push(
                Diagnostic::advisory(
                    Code::LegacyId,
                    format!(
                        "`{}` is a legacy id of plugin `{}` (legacyPluginIds in its manifest): this entry applies to it; rename the key to `{}`",
                        entry.key, manifest.id, manifest.id
                    ),
                )
                .plugin(&manifest.id)
                .file(&config.path)
                .path_and_key(&path),
            );
            let entry = plugins.entries.remove(&old).expect("looked up above");
            plugins.entries.insert(id.clone(), entry);
        }
    }
}

/// `channels.<id>` keys no discovered manifest declares are errors (as in OpenClaw);
/// a declared channel whose plugin is not enabled is a warning, since its config does
/// nothing.
/// Gives each channel's config to one plugin: the first copy in precedence order that
/// runs (enabled, neither shadowed nor passed over) and whose manifest declares it, as
/// OpenClaw gives a channel to the first plugin that registers it. Any other plugin
/// declaring the same channel keeps none of it (a channel's config holds its
/// credentials) and is told which plugin has it.
fn assign_channels(plugins: &mut [PluginRecord]) {
    // A plugin that does not run is left as it is: it receives nothing anyway, and its
    // report shows the channel it would get.
    let mut owners: HashMap<String, (usize, String)> = HashMap::new();
    for (index, record) in plugins.iter().enumerate() {
        if record.status != Status::Enabled || !record.is_active_copy() {
            continue;
        }
        for channel in record.channels.keys() {
            owners
                .entry(normalize_id(channel))
                .or_insert_with(|| (index, record.id.clone()));
        }
    }
    for (index, record) in plugins.iter_mut().enumerate() {
        let taken: Vec<String> = record
            .channels
            .keys()
            .filter(|channel| {
                owners
                    .get(&normalize_id(channel))
                    .is_some_and(|(owner, _)| *owner != index)
            })
            .cloned()
            .collect();
        for channel in taken {
            record.channels.remove(&channel);
            let Some((_, owner)) = owners.get(&normalize_id(&channel)) else {
                continue;
            };
            let diagnostic = Diagnostic::warning(
                Code::ChannelTaken,
                format!(
                    "plugin `{}` declares channel `{channel}`, which plugin `{owner}` declares first: only `{owner}` receives channels.{channel}; remove one of them, or disable the one you do not use",
                    record.id
                ),
            )
            .plugin(&record.id)
            .file(&record.manifest_path)
            .path_and_key("channels");
            record.diagnostics.push(diagnostic);
        }
    }
}

fn check_channels(config: &Config, plugins: &[PluginRecord], diagnostics: &mut Vec<Diagnostic>) {
    let mut declared: BTreeMap<String, &PluginRecord> = BTreeMap::new();
    for record in plugins.iter().filter(|record| record.claims) {
        for channel in record
            .manifest
            .iter()
            .flat_map(|manifest| &manifest.channels)
        {
            let entry = declared.entry(normalize_id(channel)).or_insert(record);
            if !entry.is_active_copy() && record.is_active_copy() {
                *entry = record;
            }
        }
    }
    for (id, channel) in &config.channels {
        let path = format!("channels.{}", channel.key);
        match declared.get(id) {
            None => {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "no discovered plugin declares a channel".to_owned()
                } else {
                    format!("channels declared: {}", known.join(", "))
                };
                diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownChannel,
                        format!(
                            "no discovered plugin's manifest declares channel `{}` ({known}); install the plugin that provides it, or fix the id",
                            channel.key
                        ),
                    )
                    .file(&config.path)
                    .path_and_key(&path),
                );
            }
            Some(record) if record.status == Status::Disabled && channel.wants_plugin() => {
                diagnostics.push(
                    Diagnostic::warning(
                        Code::UnknownChannel,
                        format!(
                            "channel `{}` is configured, but its plugin `{}` is {}: {}",
                            channel.key, record.id, record.status, record.reason
                        ),
                    )
                    .plugin(&record.id)
                    .file(&config.path)
                    .path_and_key(&path),
                );
            }
            Some(_) => {}
        }
    }
}

/// Reports config references to ids nobody has: stale `entries`, `allow`, `deny` and
/// `outpost.plugins` keys are warnings (as in OpenClaw: upgrades and removals must not
/// block startup); a slot naming a missing plugin is an error (a whole capability would
/// be silently absent). Returns the missing ids.
fn check_references(
    config: &Config,
    plugins: &[PluginRecord],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<MissingPlugin> {
    let known: HashSet<String> = plugins
        .iter()
        .map(|record| normalize_id(&record.id))
        .collect();
    let exact: HashSet<&str> = plugins.iter().map(|record| record.id.as_str()).collect();
    let mut missing: BTreeMap<String, MissingPlugin> = BTreeMap::new();
    let mut note = |id: &str, reference: String| {
        missing
            .entry(normalize_id(id))
            .or_insert_with(|| MissingPlugin {
                id: id.to_owned(),
                referenced_by: Vec::new(),
            })
            .referenced_by
            .push(reference);
    };
    let file = &config.path;
    for (id, entry) in &config.plugins.entries {
        if known.contains(id) || entry.disable_marker {
            continue;
        }
        let path = format!("plugins.entries.{}", entry.key);
        diagnostics.push(
            Diagnostic::warning(
                Code::UnknownPlugin,
                format!(
                    "no plugin `{}` was discovered; the entry is ignored (remove it if the plugin is gone, or fix the id)",
                    entry.key
                ),
            )
            .file(file)
            .path_and_key(&path),
        );
        note(&entry.key, path);
    }
    for (list, ids, is_allow) in [
        ("plugins.allow", &config.plugins.allow, true),
        ("plugins.deny", &config.plugins.deny, false),
    ] {
        for id in ids {
            if known.contains(id) {
                continue;
            }
            diagnostics.push(
                Diagnostic::warning(
                    Code::UnknownPlugin,
                    format!("no plugin `{id}` was discovered; this {list} entry has no effect"),
                )
                .file(file)
                .path(list)
                .key(id.clone()),
            );
            if is_allow {
                note(id, list.to_owned());
            }
        }
    }
    for key in SlotKey::ALL {
        let Slot::Plugin(id) = config.plugins.slots.get(key) else {
            continue;
        };
        if key.is_built_in(id) {
            continue;
        }
        let path = format!("plugins.slots.{}", key.config_key());
        if !exact.contains(id.as_str()) {
            diagnostics.push(
                Diagnostic::error(
                    Code::UnknownPlugin,
                    format!(
                        "selects `{id}`, but no plugin `{id}` was discovered: no {} plugin will run; install it or fix the id",
                        key.kind().as_str()
                    ),
                )
                .file(file)
                .path_and_key(&path),
            );
            note(id, path);
            continue;
        }
        let active = plugins
            .iter()
            .find(|record| record.id == *id && record.is_active_copy());
        if let Some(record) = active {
            let declares = record
                .manifest
                .as_ref()
                .is_some_and(|manifest| manifest.has_kind(key.kind()));
            if !declares {
                diagnostics.push(
                    Diagnostic::warning(
                        Code::Slot,
                        format!(
                            "selects `{id}`, whose manifest does not declare kind `{}`",
                            key.kind().as_str()
                        ),
                    )
                    .file(file)
                    .path_and_key(&path),
                );
            }
            if record.status != Status::Enabled {
                diagnostics.push(
                    Diagnostic::warning(
                        Code::Slot,
                        format!(
                            "selects `{id}`, which is {}: {}; no {} plugin is active",
                            record.status,
                            record.reason,
                            key.kind().as_str()
                        ),
                    )
                    .file(file)
                    .path_and_key(&path),
                );
            }
        }
    }
    for (id, override_) in &config.outpost.plugins {
        if known.contains(id) {
            continue;
        }
        let path = format!("outpost.plugins.{}", override_.key);
        diagnostics.push(
            Diagnostic::warning(
                Code::UnknownPlugin,
                format!(
                    "no plugin `{}` was discovered; these operator overrides are ignored",
                    override_.key
                ),
            )
            .file(file)
            .path_and_key(&path),
        );
        note(&override_.key, path);
    }
    missing.into_values().collect()
}

/// Advisories and cross-plugin warnings: missing requirements, ignored manifest fields,
/// no allowlist.
fn advise(config: &Config, plugins: &[PluginRecord], diagnostics: &mut Vec<Diagnostic>) {
    let known: HashSet<&str> = plugins.iter().map(|record| record.id.as_str()).collect();
    for record in plugins {
        let Some(manifest) = &record.manifest else {
            continue;
        };
        if record.shadowed_by.is_some() {
            continue;
        }
        if record.status == Status::Enabled {
            for required in &manifest.requires_plugins {
                if !known.contains(required.as_str()) {
                    diagnostics.push(
                        Diagnostic::warning(
                            Code::RequirementMissing,
                            format!(
                                "`{}` requires plugin `{required}`, which was not discovered; it may have no effect",
                                record.id
                            ),
                        )
                        .plugin(&record.id)
                        .file(&record.manifest_path)
                        .path("requiresPlugins")
                        .key(required.clone()),
                    );
                }
            }
        }
        if !manifest.ignored_fields.is_empty() {
            diagnostics.push(
                Diagnostic::advisory(
                    Code::IgnoredManifestField,
                    format!(
                        "manifest fields OpenClaw does not know are ignored: {}",
                        manifest.ignored_fields.join(", ")
                    ),
                )
                .plugin(&record.id)
                .file(&record.manifest_path),
            );
        }
    }
    if config.plugins.allow.is_empty() && config.plugins.enabled {
        const SHOWN: usize = 8;
        let untracked: Vec<String> = plugins
            .iter()
            .filter(|record| {
                record.origin != Origin::Bundled
                    && record.status != Status::Blocked
                    && record.shadowed_by.is_none()
            })
            .map(|record| {
                format!(
                    "{} ({} {})",
                    record.id,
                    record.origin,
                    record.source.display()
                )
            })
            .collect();
        if !untracked.is_empty() {
            let mut names = untracked[..untracked.len().min(SHOWN)].join(", ");
            if untracked.len() > SHOWN {
                let more = untracked.len() - SHOWN;
                names = format!("{names} and {more} more");
            }
            diagnostics.push(
                Diagnostic::warning(
                    Code::NoAllowlist,
                    format!(
                        "plugins.allow is empty and non-bundled plugins are discoverable: {names}; every one of them that is enabled runs trusted, by id alone. List the ids you trust in plugins.allow"
                    ),
                )
                .file(&config.path)
                .path_and_key("plugins.allow"),
            );
        }
    }
}
