//! `outpost openclaw link|unlink`: connects an OpenClaw deployment to `outpost serve`
//! through the bridge, the OpenClaw plugin `outpost` (plugins/openclaw-bridge), and
//! undoes it.
//!
//! # Theory of operation
//!
//! `link` writes the bridge into a directory of the deployment (by default
//! `outpost-bridge/` beside the OpenClaw config): its code, embedded in this binary, and
//! a manifest generated from the control plane, whose `contracts.tools` lists the tools
//! the enabled Outpost plugins declare (OpenClaw refuses a plugin's tool that its
//! manifest does not list). Then it edits the OpenClaw config: the bridge directory on
//! `plugins.load.paths`, `outpost` in `plugins.allow` (when the config has an
//! allowlist), and `plugins.entries.outpost` enabled, with the API address and where the
//! token and registry files are (`config.api`, `config.tokenFile`,
//! `config.registryFile`). The bridge reads the registry file at load, since OpenClaw
//! registers plugins synchronously (see registry_file.rs).
//!
//! The config is edited in place with a format-preserving parser (jsonc-parser's CST):
//! comments, unquoted keys, single quotes, trailing commas and the order of everything
//! else stay as they were; only the members above change. Running `link` again
//! rewrites the bridge and its manifest and changes nothing else that is already right.
//! `unlink` removes what `link` added and the bridge directory (only a directory that
//! carries the bridge's marker file).
//!
//! # Caveats
//!
//! The config must hold its `plugins` block itself (not through `$include`), and link
//! does not create `plugins.allow`: OpenClaw's allowlist is exclusive, so a new list
//! naming only `outpost` would turn off every other plugin.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstArray, CstInputValue, CstObject, CstRootNode, TrailingCommaMode};
use outpost_supervisor::control::{self, Status};
use serde_json::Value;

use crate::api::token;
use crate::client::ServerArgs;

/// The OpenClaw plugin id of the bridge.
const BRIDGE_ID: &str = "outpost";

/// The bridge directory's default name, beside the OpenClaw config.
const BRIDGE_DIR_NAME: &str = "outpost-bridge";

/// The file that marks a directory as the bridge `link` wrote (and `unlink` may remove).
const MARKER: &str = ".outpost-bridge";

/// The manifest template; `link` fills in `contracts.tools`.
const MANIFEST_TEMPLATE: &str =
    include_str!("../../../plugins/openclaw-bridge/openclaw.plugin.json");

/// The bridge's files, as this binary was built with them.
const BRIDGE_FILES: &[(&str, &str)] = &[
    (
        "index.js",
        include_str!("../../../plugins/openclaw-bridge/index.js"),
    ),
    (
        "lib/client.js",
        include_str!("../../../plugins/openclaw-bridge/lib/client.js"),
    ),
    (
        "lib/convert.js",
        include_str!("../../../plugins/openclaw-bridge/lib/convert.js"),
    ),
    (
        "lib/offer.js",
        include_str!("../../../plugins/openclaw-bridge/lib/offer.js"),
    ),
    (
        "lib/registry.js",
        include_str!("../../../plugins/openclaw-bridge/lib/registry.js"),
    ),
    (
        "package.json",
        include_str!("../../../plugins/openclaw-bridge/package.json"),
    ),
    (
        "README.md",
        include_str!("../../../plugins/openclaw-bridge/README.md"),
    ),
];

/// Connect OpenClaw to `outpost serve`, or undo it.
#[derive(Debug, Subcommand)]
pub(crate) enum OpenclawCommand {
    /// Install the bridge (the OpenClaw plugin `outpost`) and point the OpenClaw config
    /// at it and at `outpost serve`; run it again after Outpost's plugins change.
    Link(LinkArgs),
    /// Remove what `link` added to the OpenClaw config, and the bridge directory.
    Unlink(UnlinkArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LinkArgs {
    /// The OpenClaw config file (JSON5) to edit, e.g. ~/.openclaw/openclaw.json.
    #[arg(long, value_name = "FILE")]
    openclaw_config: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
    /// Where to write the bridge (default: `outpost-bridge/` beside the OpenClaw config).
    #[arg(long, value_name = "DIR")]
    bridge_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct UnlinkArgs {
    /// The OpenClaw config file (JSON5) `link` edited.
    #[arg(long, value_name = "FILE")]
    openclaw_config: PathBuf,
}

pub(crate) fn run(command: OpenclawCommand) -> anyhow::Result<ExitCode> {
    match command {
        OpenclawCommand::Link(args) => link(&args),
        OpenclawCommand::Unlink(args) => unlink(&args),
    }
}

/// What `link` writes into `plugins.entries.outpost.config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The bridge directory (absolute), for `plugins.load.paths`.
    pub(crate) bridge_dir: String,
    /// `http://ADDR` of the gateway API.
    pub(crate) api: String,
    /// The registry file `serve` keeps.
    pub(crate) registry_file: String,
    /// Where the bridge gets the token.
    pub(crate) credential: Credential,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The token file `serve` rewrites at each start.
    TokenFile(String),
    /// The fixed token of `outpost.api.token`.
    Token(String),
}

/// A config edit: the new text and what the operator should know about it.
#[derive(Debug)]
pub(crate) struct Edit {
    pub(crate) text: String,
    pub(crate) notes: Vec<String>,
}

fn link(args: &LinkArgs) -> anyhow::Result<ExitCode> {
    let inventory = control::load(&args.server.config).with_context(|| {
        format!(
            "cannot read the Outpost config {}; link needs the config `outpost serve` runs with (--config)",
            args.server.config.display()
        )
    })?;
    let mut settings = inventory.config.outpost.clone();
    if let Some(address) = args.server.api_listen {
        settings.api_listen = address;
    }
    let mut tools: Vec<String> = inventory
        .plugins
        .iter()
        .filter(|record| record.status == Status::Enabled && record.shadowed_by.is_none())
        .filter_map(|record| record.manifest.as_ref())
        .flat_map(|manifest| manifest.contracts.get("tools").cloned().unwrap_or_default())
        .collect();
    tools.sort();
    tools.dedup();

    let config_path = absolute(&args.openclaw_config)?;
    let text = read_openclaw_config(&config_path)?;
    let bridge_dir = match &args.bridge_dir {
        Some(dir) => absolute(dir)?,
        None => config_path
            .parent()
            .unwrap_or(Path::new("/"))
            .join(BRIDGE_DIR_NAME),
    };
    let credential = match &settings.api_token {
        Some(token) => Credential::Token(token.clone()),
        None => Credential::TokenFile(path_text(&absolute(&token::token_file(&settings)?)?)?),
    };
    let registry_file = absolute(&token::registry_file(&settings)?)?;
    let target = Target {
        bridge_dir: path_text(&bridge_dir)?,
        api: format!("http://{}", settings.api_listen),
        registry_file: path_text(&registry_file)?,
        credential,
    };
    let is_bridge = |path: &str| Path::new(path).join(MARKER).is_file();
    let edit = link_config(&text, &target, is_bridge)
        .map_err(|problem| anyhow::anyhow!("cannot link {}: {problem}", config_path.display()))?;

    write_bridge(&bridge_dir, &tools)?;
    if edit.text != text {
        write_keeping_mode(&config_path, &edit.text)
            .with_context(|| format!("could not write {}", config_path.display()))?;
    }
    println!(
        "linked {}: the bridge is in {} with {} tool{} in its manifest{}",
        config_path.display(),
        bridge_dir.display(),
        tools.len(),
        if tools.len() == 1 { "" } else { "s" },
        if tools.is_empty() {
            String::new()
        } else {
            format!(" ({})", tools.join(", "))
        }
    );
    if let Credential::Token(_) = target.credential {
        println!(
            "note: the Outpost config sets outpost.api.token, so the token is now in plugins.entries.outpost.config.token too (OUTPOST_API_TOKEN in OpenClaw's environment wins over it)"
        );
    }
    for note in &edit.notes {
        println!("note: {note}");
    }
    if !registry_file.exists() {
        println!(
            "note: {} does not exist yet: start `outpost serve --config {}` before OpenClaw, so the bridge finds the registry at load",
            registry_file.display(),
            args.server.config.display()
        );
    }
    println!(
        "next: if OpenClaw is running, `openclaw plugins reload {BRIDGE_ID}` picks this up without a restart"
    );
    Ok(ExitCode::SUCCESS)
}

fn unlink(args: &UnlinkArgs) -> anyhow::Result<ExitCode> {
    let config_path = absolute(&args.openclaw_config)?;
    let text = read_openclaw_config(&config_path)?;
    let is_bridge = |path: &str| Path::new(path).join(MARKER).is_file();
    let (edit, removed) = unlink_config(&text, is_bridge)
        .map_err(|problem| anyhow::anyhow!("cannot unlink {}: {problem}", config_path.display()))?;
    if edit.text != text {
        write_keeping_mode(&config_path, &edit.text)
            .with_context(|| format!("could not write {}", config_path.display()))?;
    }
    for dir in &removed {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("could not remove the bridge directory {dir}"))?;
    }
    if edit.text == text && removed.is_empty() {
        println!("{} was not linked: nothing to undo", config_path.display());
    } else {
        println!(
            "unlinked {}{}",
            config_path.display(),
            if removed.is_empty() {
                String::new()
            } else {
                format!("; removed {}", removed.join(", "))
            }
        );
        println!(
            "next: if OpenClaw is running, it drops the plugin `{BRIDGE_ID}` at its next config reload or restart"
        );
    }
    for note in &edit.notes {
        println!("note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_openclaw_config(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the OpenClaw config {}: pass the file OpenClaw runs with (OPENCLAW_CONFIG_PATH, by default ~/.openclaw/openclaw.json)",
            path.display()
        )
    })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

fn path_text(path: &Path) -> anyhow::Result<String> {
    path.to_str().map(str::to_owned).with_context(|| {
        format!(
            "{} is not valid UTF-8, and OpenClaw's config is text",
            path.display()
        )
    })
}

/// The bridge's manifest: the template with `contracts.tools` set.
pub(crate) fn manifest(tools: &[String]) -> String {
    let mut value: Value =
        serde_json::from_str(MANIFEST_TEMPLATE).expect("the manifest template is JSON");
    value["contracts"]["tools"] = Value::from(tools.to_vec());
    let mut text = serde_json::to_string_pretty(&value).expect("manifests serialize");
    text.push('\n');
    text
}

/// Writes the bridge's files and its manifest into `dir`; refuses a directory that
/// holds something else.
fn write_bridge(dir: &Path, tools: &[String]) -> anyhow::Result<()> {
    if dir.exists() {
        let ours = dir.join(MARKER).is_file();
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        anyhow::ensure!(
            ours || empty,
            "{} exists and is not a bridge `outpost openclaw link` wrote (no {MARKER} in it): move it away, or pass --bridge-dir",
            dir.display()
        );
    }
    let marker = "Written by `outpost openclaw link`, and rewritten at each link: do not edit. `outpost openclaw unlink` removes this directory.\n";
    let generated = manifest(tools);
    let files = BRIDGE_FILES.iter().copied().chain([
        ("openclaw.plugin.json", generated.as_str()),
        (MARKER, marker),
    ]);
    for (name, text) in files {
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let temporary = parent.join(format!(
            ".{}.{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Replaces `path` with `text` in one step, keeping its permissions.
fn write_keeping_mode(path: &Path, text: &str) -> std::io::Result<()> {
    let permissions = std::fs::metadata(path)?.permissions();
    let dir = path.parent().unwrap_or(Path::new("."));
    let temporary = dir.join(format!(
        ".{}.outpost-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, text)?;
    std::fs::set_permissions(&temporary, permissions)?;
    std::fs::rename(&temporary, path)
}

fn parse(text: &str) -> Result<CstRootNode, String> {
    CstRootNode::parse(text, &ParseOptions::default())
        .map_err(|error| format!("it is not JSON5 OpenClaw can read: {error}"))
}

/// The root object (an empty file is an empty object).
fn root_object(root: &CstRootNode) -> Result<CstObject, String> {
    match root.value() {
        None => Ok(root.object_value_or_set()),
        Some(value) => value
            .as_object()
            .ok_or_else(|| "its top level is not an object".to_owned()),
    }
}

/// `parent.name` as an object, created when absent.
fn object(parent: &CstObject, name: &str, path: &str) -> Result<CstObject, String> {
    parent.object_value_or_create(name).ok_or_else(|| {
        format!("`{path}` is not an object (link edits it only when this file holds it as an object, not through `$include`)")
    })
}

/// `parent.name` as an array, created when absent.
fn array(parent: &CstObject, name: &str, path: &str) -> Result<CstArray, String> {
    parent
        .array_value_or_create(name)
        .ok_or_else(|| format!("`{path}` is not a list"))
}

/// Sets `object.name` to `value`, replacing the value in place when it exists.
fn set(object: &CstObject, name: &str, value: CstInputValue) {
    match object.get(name) {
        Some(prop) => prop.set_value(value),
        None => {
            object.append(name, value);
        }
    }
}

fn string_elements(array: &CstArray) -> Vec<(Option<String>, jsonc_parser::cst::CstNode)> {
    array
        .elements()
        .into_iter()
        .map(|node| {
            let text = node.to_serde_value().and_then(|value| match value {
                Value::String(text) => Some(text),
                _ => None,
            });
            (text, node)
        })
        .collect()
}

fn value_of(object: &CstObject, name: &str) -> Option<Value> {
    object
        .get(name)
        .and_then(|prop| prop.value())
        .and_then(|node| node.to_serde_value())
}

/// The OpenClaw config `text` with the bridge linked to `target`; a bridge directory
/// linked before elsewhere (one `is_bridge` recognises) leaves `plugins.load.paths`, so
/// OpenClaw does not load two copies.
pub(crate) fn link_config(
    text: &str,
    target: &Target,
    is_bridge: impl Fn(&str) -> bool,
) -> Result<Edit, String> {
    let root = parse(text)?;
    let top = root_object(&root)?;
    let plugins = object(&top, "plugins", "plugins")?;
    if value_of(&plugins, "enabled") == Some(Value::Bool(false)) {
        return Err(
            "`plugins.enabled` is false, so OpenClaw loads no plugin at all; turn plugins on first"
                .into(),
        );
    }
    if let Some(Value::Array(deny)) = value_of(&plugins, "deny")
        && deny.iter().any(|id| id.as_str() == Some(BRIDGE_ID))
    {
        return Err(format!(
            "`plugins.deny` names `{BRIDGE_ID}`, so OpenClaw would refuse the bridge; take it out of the denylist if you mean to link"
        ));
    }
    let mut notes = Vec::new();

    let load = object(&plugins, "load", "plugins.load")?;
    let paths = array(&load, "paths", "plugins.load.paths")?;
    let mut present = false;
    for (path, node) in string_elements(&paths) {
        match path {
            Some(path) if path == target.bridge_dir => present = true,
            Some(path) if is_bridge(&path) => {
                node.remove();
                notes.push(format!(
                    "the bridge linked before in {path} left plugins.load.paths (its directory stays; remove it when you like)"
                ));
            }
            _ => {}
        }
    }
    if !present {
        paths.append(CstInputValue::String(target.bridge_dir.clone()));
    }

    match plugins.get("allow") {
        Some(_) => {
            let allow = array(&plugins, "allow", "plugins.allow")?;
            if !string_elements(&allow)
                .iter()
                .any(|(id, _)| id.as_deref() == Some(BRIDGE_ID))
            {
                allow.append(CstInputValue::String(BRIDGE_ID.into()));
            }
        }
        None => notes.push(format!(
            "`plugins.allow` is not set, so OpenClaw loads `{BRIDGE_ID}` without it (with a warning); link does not create an allowlist, because a list naming only `{BRIDGE_ID}` would turn every other plugin off: add one with all the plugin ids you use"
        )),
    }

    let entries = object(&plugins, "entries", "plugins.entries")?;
    let entry = object(&entries, BRIDGE_ID, "plugins.entries.outpost")?;
    if value_of(&entry, "enabled") != Some(Value::Bool(true)) {
        set(&entry, "enabled", CstInputValue::Bool(true));
    }
    let config = object(&entry, "config", "plugins.entries.outpost.config")?;
    let mut wanted = vec![
        ("api", target.api.clone()),
        ("registryFile", target.registry_file.clone()),
    ];
    let (keep, drop) = match &target.credential {
        Credential::TokenFile(file) => (("tokenFile", file.clone()), "token"),
        Credential::Token(token) => (("token", token.clone()), "tokenFile"),
    };
    wanted.push(keep);
    for (name, value) in wanted {
        if value_of(&config, name).as_ref().and_then(Value::as_str) != Some(value.as_str()) {
            set(&config, name, CstInputValue::String(value));
        }
    }
    if let Some(prop) = config.get(drop) {
        prop.remove();
    }
    // What link wrote follows the file's style: trailing commas if the file has them.
    if plugins.uses_trailing_commas() {
        for written in [&load, &entry, &config] {
            written.set_trailing_commas(TrailingCommaMode::IfMultiline);
        }
    }
    Ok(Edit {
        text: root.to_string(),
        notes,
    })
}

/// The OpenClaw config `text` without the bridge, and the bridge directories it named
/// (those `is_bridge` recognises: they carry the marker).
pub(crate) fn unlink_config(
    text: &str,
    is_bridge: impl Fn(&str) -> bool,
) -> Result<(Edit, Vec<String>), String> {
    let root = parse(text)?;
    let top = root_object(&root)?;
    let mut removed = Vec::new();
    let mut notes = Vec::new();
    let Some(plugins) = top.get("plugins").and_then(|prop| prop.value()) else {
        return Ok((
            Edit {
                text: text.to_owned(),
                notes,
            },
            removed,
        ));
    };
    let plugins = plugins
        .as_object()
        .ok_or("`plugins` is not an object (link edits it only when this file holds it)")?;

    if let Some(load) = plugins.object_value("load")
        && let Some(paths) = load.array_value("paths")
    {
        for (path, node) in string_elements(&paths) {
            if let Some(path) = path
                && is_bridge(&path)
            {
                node.remove();
                removed.push(path);
            }
        }
        if paths.elements().is_empty() {
            remove_prop(&load, "paths");
        }
        if load.properties().is_empty() {
            remove_prop(&plugins, "load");
        }
    }
    if let Some(allow) = plugins.array_value("allow") {
        for (id, node) in string_elements(&allow) {
            if id.as_deref() == Some(BRIDGE_ID) {
                node.remove();
            }
        }
        if allow.elements().is_empty() {
            notes.push("`plugins.allow` is now an empty list".to_owned());
        }
    }
    if let Some(entries) = plugins.object_value("entries") {
        remove_prop(&entries, BRIDGE_ID);
        if entries.properties().is_empty() {
            remove_prop(&plugins, "entries");
        }
    }
    if plugins.properties().is_empty() {
        remove_prop(&top, "plugins");
    }
    Ok((
        Edit {
            text: root.to_string(),
            notes,
        },
        removed,
    ))
}

fn remove_prop(object: &CstObject, name: &str) {
    if let Some(prop) = object.get(name) {
        prop.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            bridge_dir: "/srv/openclaw/outpost-bridge".into(),
            api: "http://127.0.0.1:7777".into(),
            registry_file: "/var/lib/outpost/registry-7777.json".into(),
            credential: Credential::TokenFile("/var/lib/outpost/api-token-7777".into()),
        }
    }

    fn parsed(text: &str) -> Value {
        json5::from_str(text).unwrap_or_else(|e| panic!("not JSON5: {e}\n{text}"))
    }

    /// JSON5 as operators write it: comments, unquoted keys, single quotes, trailing
    /// commas.
    const JSON5: &str = r#"// OpenClaw, production
{
  /* the gateway */
  gateway: { mode: 'local', port: 18789, },
  plugins: {
    allow: ['voice-call', "memory-core",], // keep these
    load: { paths: ['/opt/plugins/acme'] },
    entries: {
      'voice-call': { enabled: true, config: { provider: 'twilio' } },
    },
  },
  agents: { defaults: { model: 'openai/gpt-6' } }, // trailing
}
"#;

    #[test]
    fn link_adds_the_bridge_and_keeps_everything_else_as_written() {
        let edit = link_config(JSON5, &target(), |_| false).unwrap();
        let text = &edit.text;
        // Untouched lines stay byte for byte.
        for line in [
            "// OpenClaw, production",
            "  /* the gateway */",
            "  gateway: { mode: 'local', port: 18789, },",
            "      'voice-call': { enabled: true, config: { provider: 'twilio' } },",
            "  agents: { defaults: { model: 'openai/gpt-6' } }, // trailing",
        ] {
            assert!(text.contains(line), "lost `{line}` in:\n{text}");
        }
        assert!(text.contains("// keep these"), "{text}");
        let value = parsed(text);
        let plugins = &value["plugins"];
        assert_eq!(
            plugins["allow"],
            serde_json::json!(["voice-call", "memory-core", "outpost"])
        );
        assert_eq!(
            plugins["load"]["paths"],
            serde_json::json!(["/opt/plugins/acme", "/srv/openclaw/outpost-bridge"])
        );
        assert_eq!(
            plugins["entries"]["outpost"],
            serde_json::json!({
                "enabled": true,
                "config": {
                    "api": "http://127.0.0.1:7777",
                    "registryFile": "/var/lib/outpost/registry-7777.json",
                    "tokenFile": "/var/lib/outpost/api-token-7777",
                },
            })
        );
        assert_eq!(
            plugins["entries"]["voice-call"]["config"]["provider"],
            "twilio"
        );
        assert_eq!(value["agents"]["defaults"]["model"], "openai/gpt-6");
        assert!(edit.notes.is_empty(), "{:?}", edit.notes);
    }

    #[test]
    fn link_again_changes_nothing_and_follows_a_moved_server() {
        let once = link_config(JSON5, &target(), |_| false).unwrap().text;
        let twice = link_config(&once, &target(), |_| false).unwrap().text;
        assert_eq!(once, twice);
        let moved = Target {
            api: "http://127.0.0.1:9000".into(),
            credential: Credential::Token("s3cret".into()),
            ..target()
        };
        let value = parsed(&link_config(&twice, &moved, |_| false).unwrap().text);
        let config = &value["plugins"]["entries"]["outpost"]["config"];
        assert_eq!(config["api"], "http://127.0.0.1:9000");
        assert_eq!(config["token"], "s3cret");
        assert!(config.get("tokenFile").is_none(), "{config}");
    }

    #[test]
    fn link_keeps_what_the_operator_added_to_the_entry() {
        let text = r"{ plugins: { entries: { outpost: {
            enabled: false,
            hooks: { allowConversationAccess: true },
            config: { offerMethods: ['health'], api: 'http://old' },
        } } } }";
        let value = parsed(&link_config(text, &target(), |_| false).unwrap().text);
        let entry = &value["plugins"]["entries"]["outpost"];
        assert_eq!(entry["enabled"], true);
        assert_eq!(entry["hooks"]["allowConversationAccess"], true);
        assert_eq!(
            entry["config"]["offerMethods"],
            serde_json::json!(["health"])
        );
        assert_eq!(entry["config"]["api"], "http://127.0.0.1:7777");
    }

    #[test]
    fn a_bridge_linked_elsewhere_before_leaves_the_load_paths() {
        let text = "{ plugins: { load: { paths: ['/opt/acme', '/old/outpost-bridge'] } } }";
        let edit = link_config(text, &target(), |path| path.ends_with("outpost-bridge")).unwrap();
        assert_eq!(
            parsed(&edit.text)["plugins"]["load"]["paths"],
            serde_json::json!(["/opt/acme", "/srv/openclaw/outpost-bridge"])
        );
        assert!(
            edit.notes[0].contains("/old/outpost-bridge"),
            "{:?}",
            edit.notes
        );
    }

    #[test]
    fn link_creates_what_is_missing_but_never_an_allowlist() {
        for text in ["", "{}", "{ gateway: { port: 1 } }\n"] {
            let edit = link_config(text, &target(), |_| false).unwrap();
            let value = parsed(&edit.text);
            assert_eq!(
                value["plugins"]["load"]["paths"],
                serde_json::json!(["/srv/openclaw/outpost-bridge"]),
                "from `{text}`"
            );
            assert!(value["plugins"].get("allow").is_none(), "from `{text}`");
            assert_eq!(value["plugins"]["entries"]["outpost"]["enabled"], true);
            assert!(edit.notes[0].contains("plugins.allow"), "{:?}", edit.notes);
        }
    }

    #[test]
    fn link_refuses_what_it_cannot_do_and_says_why() {
        let cases = [
            ("[1, 2]", "top level is not an object"),
            ("{ plugins: 'x' }", "`plugins` is not an object"),
            (
                "{ plugins: { enabled: false } }",
                "`plugins.enabled` is false",
            ),
            (
                "{ plugins: { deny: ['outpost'] } }",
                "`plugins.deny` names `outpost`",
            ),
            (
                "{ plugins: { load: { paths: 'a' } } }",
                "`plugins.load.paths` is not a list",
            ),
            (
                "{ plugins: { allow: 'outpost' } }",
                "`plugins.allow` is not a list",
            ),
            (
                "{ plugins: { entries: { outpost: true } } }",
                "`plugins.entries.outpost` is not an object",
            ),
            ("{ plugins: { ", "not JSON5"),
        ];
        for (text, expected) in cases {
            let problem = link_config(text, &target(), |_| false).unwrap_err();
            assert!(problem.contains(expected), "`{text}`: {problem}");
        }
    }

    #[test]
    fn unlink_undoes_link() {
        let linked = link_config(JSON5, &target(), |_| false).unwrap().text;
        let (edit, removed) =
            unlink_config(&linked, |path| path == "/srv/openclaw/outpost-bridge").unwrap();
        assert_eq!(removed, ["/srv/openclaw/outpost-bridge"]);
        assert_eq!(parsed(&edit.text), parsed(JSON5));
        assert!(edit.text.contains("// keep these"), "{}", edit.text);

        // What link created from nothing, unlink takes away again.
        let linked = link_config("{ gateway: { port: 1 } }", &target(), |_| false)
            .unwrap()
            .text;
        let (edit, _) = unlink_config(&linked, |_| true).unwrap();
        assert_eq!(
            parsed(&edit.text),
            serde_json::json!({"gateway": {"port": 1}})
        );

        // Nothing linked: nothing changes.
        let (edit, removed) = unlink_config(JSON5, |_| false).unwrap();
        assert_eq!(edit.text, JSON5);
        assert!(removed.is_empty());
    }

    #[test]
    fn a_multiline_config_keeps_its_trailing_commas_and_unlink_restores_it_exactly() {
        let text = "{\n  plugins: {\n    allow: [\n      'a',\n      'b',\n    ],\n    entries: {\n      a: { enabled: true },\n    },\n  },\n}\n";
        let linked = link_config(text, &target(), |_| false).unwrap().text;
        assert!(
            linked.contains("      'b',\n      \"outpost\",\n    ],"),
            "{linked}"
        );
        assert!(
            linked.contains("\"tokenFile\": \"/var/lib/outpost/api-token-7777\",\n"),
            "{linked}"
        );
        let (edit, _) = unlink_config(&linked, |_| true).unwrap();
        assert_eq!(edit.text, text);
    }

    #[test]
    fn the_manifest_lists_the_tools_and_keeps_the_template() {
        let value: Value = serde_json::from_str(&manifest(&["a".into(), "b".into()])).unwrap();
        assert_eq!(value["id"], BRIDGE_ID);
        assert_eq!(value["contracts"]["tools"], serde_json::json!(["a", "b"]));
        assert_eq!(value["configSchema"]["type"], "object");
    }

    #[test]
    fn every_file_of_the_bridge_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/openclaw-bridge");
        let mut on_disk = Vec::new();
        for sub in ["", "lib"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    let name = path
                        .strip_prefix(&dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    on_disk.push(name);
                }
            }
        }
        on_disk.retain(|name| name != "openclaw.plugin.json");
        on_disk.sort();
        let mut embedded: Vec<String> = BRIDGE_FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add new bridge files to BRIDGE_FILES");
    }
}
