//! `outpost plugins enable|disable|install|uninstall|update`: the day-2 commands, which
//! change the config file or the global extensions directory. None of them runs plugin
//! code; a running `outpost serve` picks the change up at its next reload
//! (`outpost reload`, `config.reload` or SIGHUP).
//!
//! # Theory of operation
//!
//! `enable` and `disable` set `plugins.entries.<id>.enabled` in the config file, edited
//! in place with a format-preserving parser (jsonc-parser's CST, as `outpost openclaw
//! link` does): comments, unquoted keys, quotes, trailing commas and the order of
//! everything else stay as written. `enable` also refuses an id in `plugins.deny` and
//! adds the id to a non-empty `plugins.allow`. The new text must load again before it
//! replaces the file (in one rename, keeping the file's mode); otherwise nothing is
//! written and the reason is printed.
//!
//! `install` copies a plugin directory, or unpacks a `.tgz`, `.tar.gz` or `.zip`
//! archive, into a staging directory inside the global extensions directory (a name
//! discovery skips), refuses a `package.json` with install scripts, runs the control
//! plane on the staged copy alone (safety gates, manifest, `outpost` block, launch,
//! schema), and only then renames it to `<globalDir>/<id>` and records where it came
//! from in `<globalDir>/<id>/.outpost-install.json`. `update` installs again from that
//! source and swaps the directories; `uninstall` removes the directory.
//!
//! # Caveats
//!
//! Archive members that are links, devices or that would land outside the directory
//! are refused, as are archives over 1 GiB unpacked or 200 000 members. File modes are
//! normalised to 0644 and 0755 (executables), as npm does. Installing never edits the
//! config: with a non-empty `plugins.allow`, the new plugin stays off until
//! `outpost plugins enable <id>`.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Args;
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode, TrailingCommaMode};
use outpost_supervisor::control::{self, Inventory, Manifest, Origin, PluginRecord, Status};
use serde_json::{Value, json};

/// The file `install` writes into the plugin's directory: where it came from.
pub(crate) const INSTALL_RECORD: &str = ".outpost-install.json";

/// The largest unpacked archive, and the most members.
const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;
const MAX_MEMBERS: usize = 200_000;

/// `package.json` scripts that npm runs at install time.
const INSTALL_SCRIPTS: &[&str] = &[
    "preinstall",
    "install",
    "postinstall",
    "prepare",
    "preprepare",
    "postprepare",
];

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The plugin id.
    id: String,
    /// The config file (JSON5).
    #[arg(long, value_name = "FILE", default_value = control::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    /// A plugin directory, or a `.tgz`, `.tar.gz` or `.zip` archive of one (an npm pack
    /// tarball's `package/` directory is looked into).
    #[arg(value_name = "PATH|ARCHIVE")]
    source: PathBuf,
    /// The config file (JSON5): where the global extensions directory is.
    #[arg(long, value_name = "FILE", default_value = control::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
}

const RELOAD_HINT: &str =
    "a running `outpost serve` applies this at its next reload: `outpost reload` (or SIGHUP)";

// ---------------------------------------------------------------------------------
// enable / disable

pub(crate) fn enable(args: &IdArgs) -> anyhow::Result<ExitCode> {
    switch(args, true)
}

pub(crate) fn disable(args: &IdArgs) -> anyhow::Result<ExitCode> {
    switch(args, false)
}

fn switch(args: &IdArgs, on: bool) -> anyhow::Result<ExitCode> {
    let inventory = control::load(&args.config)?;
    let path = inventory.config.path.clone();
    let found = inventory.get(&args.id).or_else(|| {
        inventory
            .plugins
            .iter()
            .find(|record| record.id.eq_ignore_ascii_case(args.id.trim()))
    });
    let id = match found {
        Some(record) => record.id.clone(),
        None if inventory
            .config
            .plugins
            .entries
            .contains_key(&args.id.trim().to_lowercase()) =>
        {
            args.id.clone()
        }
        None => bail!(
            "no plugin `{}` was discovered with {}; `outpost plugins list --config {}` shows the ids there are",
            args.id,
            path.display(),
            args.config.display()
        ),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let edit = set_enabled(&text, &id, on).map_err(|reason| {
        anyhow::anyhow!(
            "cannot edit {} in place: {reason}; set plugins.entries.{id}.enabled to {on} by hand",
            path.display()
        )
    })?;
    let word = if on { "enabled" } else { "disabled" };
    if edit.text == text {
        println!(
            "plugins.entries.{id}.enabled is already {on} in {}",
            path.display()
        );
    } else {
        write_checked(&path, &edit.text)?;
        println!("{}: plugins.entries.{id}.enabled = {on}", path.display());
    }
    for note in &edit.notes {
        println!("note: {note}");
    }
    let after = control::load(&path)?;
    report_status(&after, &id);
    let effective = after
        .get(&id)
        .is_some_and(|record| (record.status == Status::Enabled) == on);
    if !effective {
        println!("`{id}` is still not {word}: the reason above decides");
    }
    println!("{RELOAD_HINT}");
    Ok(ExitCode::SUCCESS)
}

/// The result of an edit: the new text, and what the operator should know.
#[derive(Debug)]
pub(crate) struct Edit {
    pub(crate) text: String,
    pub(crate) notes: Vec<String>,
}

/// The config `text` with `plugins.entries.<id>.enabled` set to `on` (the entry found
/// whatever the case of its key); enabling also refuses a denied id and adds the id to
/// a non-empty `plugins.allow`.
pub(crate) fn set_enabled(text: &str, id: &str, on: bool) -> Result<Edit, String> {
    let root = CstRootNode::parse(text, &ParseOptions::default()).map_err(|error| {
        format!("the format-preserving parser cannot read it ({error}), though the config loads")
    })?;
    let top = match root.value() {
        None => root.object_value_or_set(),
        Some(value) => value
            .as_object()
            .ok_or_else(|| "its top level is not an object".to_owned())?,
    };
    let plugins = top
        .object_value_or_create("plugins")
        .ok_or("`plugins` is not an object")?;
    let wanted = id.trim().to_lowercase();
    let same = |name: &str| name.trim().to_lowercase() == wanted;
    let mut notes = Vec::new();
    if on {
        if let Some(deny) = plugins.get("deny").and_then(|prop| prop.value()) {
            let denied = deny
                .to_serde_value()
                .and_then(|value| value.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .any(|entry| entry.as_str().is_some_and(same));
            if denied {
                return Err(format!(
                    "`plugins.deny` lists `{id}`, and deny always wins; take it out of plugins.deny first"
                ));
            }
        }
        if value_of(&plugins, "enabled") == Some(Value::Bool(false)) {
            notes.push("`plugins.enabled` is false, so no plugin runs until it is true".to_owned());
        }
        if let Some(prop) = plugins.get("allow") {
            let allow = prop
                .value()
                .and_then(|value| value.as_array())
                .ok_or("`plugins.allow` is not a list")?;
            let elements = allow.elements();
            let listed = elements.iter().any(|node| {
                node.to_serde_value()
                    .is_some_and(|value| value.as_str().is_some_and(same))
            });
            if !elements.is_empty() && !listed {
                allow.append(CstInputValue::String(id.to_owned()));
                notes.push(format!(
                    "added `{id}` to plugins.allow: the allowlist is set and would keep it off"
                ));
            }
        }
    }
    let entries = plugins
        .object_value_or_create("entries")
        .ok_or("`plugins.entries` is not an object")?;
    let existing = entries
        .properties()
        .into_iter()
        .find(|prop| prop.decoded_name().is_some_and(|name| same(&name)));
    let entry = match existing {
        Some(prop) => {
            let key = prop.decoded_name().unwrap_or_default();
            prop.value()
                .and_then(|value| value.as_object())
                .ok_or_else(|| format!("`plugins.entries.{key}` is not an object"))?
        }
        None => entries
            .object_value_or_create(id)
            .ok_or_else(|| format!("`plugins.entries.{id}` is not an object"))?,
    };
    if value_of(&entry, "enabled") != Some(Value::Bool(on)) {
        match entry.get("enabled") {
            Some(prop) => prop.set_value(CstInputValue::Bool(on)),
            None => {
                entry.append("enabled", CstInputValue::Bool(on));
            }
        }
    }
    if plugins.uses_trailing_commas() {
        for written in [&plugins, &entries, &entry] {
            written.set_trailing_commas(TrailingCommaMode::IfMultiline);
        }
    }
    Ok(Edit {
        text: root.to_string(),
        notes,
    })
}

fn value_of(object: &CstObject, name: &str) -> Option<Value> {
    object
        .get(name)
        .and_then(|prop| prop.value())
        .and_then(|node| node.to_serde_value())
}

/// Replaces the config with `new`: written beside it with the config's own mode from
/// the first byte (it holds secrets), loaded from there, and only then renamed over
/// the config in one step. A `serve` reloading meanwhile reads the old file or the new
/// one, never a broken one.
fn write_checked(path: &Path, new: &str) -> anyhow::Result<()> {
    let temporary = sibling(path, "edit");
    let result = (|| {
        write_private(path, &temporary, new)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        if let Err(error) = control::load(&temporary) {
            bail!(
                "the edited config would not load ({error}); {} is unchanged",
                path.display()
            );
        }
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot replace {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Writes `text` to the new file `temporary` with the mode of `like`.
fn write_private(like: &Path, temporary: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mode = std::fs::metadata(like)?.permissions().mode() & 0o777;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A name beside `path` that discovery skips (it contains `.disabled`).
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    path.with_file_name(format!(
        ".{name}.disabled-outpost-{what}-{}-{nanos}",
        std::process::id()
    ))
}

fn report_status(inventory: &Inventory, id: &str) {
    match inventory.get(id) {
        Some(record) => println!(
            "`{}` ({} {}): {}: {}",
            record.id,
            record.origin,
            record.root.display(),
            record.status,
            record.reason
        ),
        None => println!("`{id}`: not discovered"),
    }
}

// ---------------------------------------------------------------------------------
// install / update / uninstall

pub(crate) fn install(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    let inventory = control::load(&args.config)?;
    let global = global_dir(&inventory)?;
    let source = std::path::absolute(&args.source)
        .with_context(|| format!("cannot resolve {}", args.source.display()))?;
    let staged = Staged::prepare(&inventory, &global, &source)?;
    let destination = global.join(&staged.id);
    if std::fs::symlink_metadata(&destination).is_ok() {
        bail!(
            "`{}` is already installed at {}; `outpost plugins update {}` installs it again from where it came from, or `outpost plugins uninstall {}` removes it first",
            staged.id,
            destination.display(),
            staged.id,
            staged.id
        );
    }
    std::fs::rename(&staged.root, &destination)
        .with_context(|| format!("cannot move the checked copy to {}", destination.display()))?;
    write_install_record(&destination, &staged)?;
    println!(
        "installed `{}`{} from {} into {}",
        staged.id,
        staged
            .version
            .as_deref()
            .map(|version| format!(" {version}"))
            .unwrap_or_default(),
        source.display(),
        destination.display()
    );
    drop(staged);
    let after = control::load(&inventory.config.path)?;
    let id = id_of(&after, &destination);
    report_status(&after, &id);
    if after
        .get(&id)
        .is_some_and(|record| record.status == Status::Disabled)
    {
        println!("`outpost plugins enable {id}` turns it on");
    }
    println!("{RELOAD_HINT}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn update(args: &IdArgs) -> anyhow::Result<ExitCode> {
    let inventory = control::load(&args.config)?;
    let global = global_dir(&inventory)?;
    let (record, directory) = installed_copy(&inventory, &global, &args.id)?;
    let recorded = std::fs::read_to_string(directory.join(INSTALL_RECORD))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let Some(source) = recorded
        .as_ref()
        .and_then(|recorded| recorded["source"].as_str())
        .map(PathBuf::from)
    else {
        bail!(
            "`{}` at {} was not installed by `outpost plugins install` (no readable {INSTALL_RECORD}), so where it came from is unknown; `outpost plugins uninstall {}` and install it again",
            record.id,
            directory.display(),
            record.id
        );
    };
    if std::fs::symlink_metadata(&source).is_err() {
        bail!(
            "`{}` was installed from {}, which no longer exists; `outpost plugins uninstall {}`, then install it from where it is now",
            record.id,
            source.display(),
            record.id
        );
    }
    let staged = Staged::prepare(&inventory, &global, &source)?;
    if staged.id != record.id {
        bail!(
            "{} now holds plugin `{}`, not `{}`; nothing was changed",
            source.display(),
            staged.id,
            record.id
        );
    }
    let old = sibling(&directory, "old");
    std::fs::rename(&directory, &old)
        .with_context(|| format!("cannot move {} aside", directory.display()))?;
    if let Err(error) = std::fs::rename(&staged.root, &directory) {
        let _ = std::fs::rename(&old, &directory);
        return Err(error).with_context(|| format!("cannot replace {}", directory.display()));
    }
    write_install_record(&directory, &staged)?;
    remove_tree(&old)?;
    println!(
        "updated `{}` from {}: {} -> {}",
        record.id,
        source.display(),
        record.version.as_deref().unwrap_or("(no version)"),
        staged.version.as_deref().unwrap_or("(no version)")
    );
    drop(staged);
    let after = control::load(&inventory.config.path)?;
    report_status(&after, &record.id);
    println!("{RELOAD_HINT}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn uninstall(args: &IdArgs) -> anyhow::Result<ExitCode> {
    let inventory = control::load(&args.config)?;
    let global = global_dir(&inventory)?;
    let (record, directory) = installed_copy(&inventory, &global, &args.id)?;
    let metadata = std::fs::symlink_metadata(&directory)
        .with_context(|| format!("cannot inspect {}", directory.display()))?;
    if metadata.file_type().is_symlink() {
        std::fs::remove_file(&directory)
            .with_context(|| format!("cannot remove the link {}", directory.display()))?;
    } else {
        let aside = sibling(&directory, "removed");
        std::fs::rename(&directory, &aside)
            .with_context(|| format!("cannot remove {}", directory.display()))?;
        remove_tree(&aside)?;
    }
    println!("removed `{}` ({})", record.id, directory.display());
    let entry = inventory
        .config
        .plugins
        .entries
        .get(&record.id.to_lowercase());
    if let Some(entry) = entry {
        println!(
            "note: plugins.entries.{} stays in {} (so installing it again is not destructive); remove it, or the config warns about an unknown plugin",
            entry.key,
            inventory.config.path.display()
        );
    }
    let after = control::load(&inventory.config.path)?;
    if after.get(&record.id).is_some() {
        report_status(&after, &record.id);
    }
    println!("{RELOAD_HINT}");
    Ok(ExitCode::SUCCESS)
}

fn global_dir(inventory: &Inventory) -> anyhow::Result<PathBuf> {
    let Some(global) = inventory.config.outpost.global_dir.clone() else {
        bail!(
            "there is no global extensions directory: HOME is not set and {} has no outpost.globalDir",
            inventory.config.path.display()
        );
    };
    std::fs::create_dir_all(&global)
        .with_context(|| format!("cannot create {}", global.display()))?;
    Ok(global)
}

/// The global copy of `id` and its directory in `global` (the link itself when the
/// directory is a link).
fn installed_copy<'a>(
    inventory: &'a Inventory,
    global: &Path,
    id: &'a str,
) -> anyhow::Result<(&'a PluginRecord, PathBuf)> {
    let Some(record) = inventory
        .copies(id)
        .find(|record| record.origin == Origin::Global)
    else {
        return Err(match inventory.get(id) {
            Some(other) => anyhow::anyhow!(
                "`{id}` is not in the global extensions directory {}: it is the {} copy at {}; {}",
                global.display(),
                other.origin,
                other.root.display(),
                match other.origin {
                    Origin::Config => "take it out of plugins.load.paths instead",
                    Origin::Workspace =>
                        "it belongs to the workspace; delete it there, or disable it",
                    _ => "bundled plugins ship with Outpost: `outpost plugins disable` it instead",
                }
            ),
            None => anyhow::anyhow!(
                "no plugin `{id}` was discovered; `outpost plugins list` shows the ids there are"
            ),
        });
    };
    let real_global = std::fs::canonicalize(global).unwrap_or_else(|_| global.to_path_buf());
    for entry in
        std::fs::read_dir(global).with_context(|| format!("cannot list {}", global.display()))?
    {
        let path = entry?.path();
        if std::fs::canonicalize(&path).is_ok_and(|real| real == record.root)
            && record.root != real_global
        {
            return Ok((record, path));
        }
    }
    bail!(
        "`{id}` is found in {} but not as a directory of its own; remove {} by hand",
        global.display(),
        record.source.display()
    )
}

fn id_of(inventory: &Inventory, directory: &Path) -> String {
    let real = std::fs::canonicalize(directory).unwrap_or_else(|_| directory.to_path_buf());
    inventory
        .plugins
        .iter()
        .find(|record| record.root == real)
        .map(|record| record.id.clone())
        .unwrap_or_default()
}

fn write_install_record(directory: &Path, staged: &Staged) -> anyhow::Result<()> {
    let installed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let record = json!({
        "id": staged.id,
        "version": staged.version,
        "source": staged.source,
        "kind": staged.kind,
        "installedAt": installed_at,
    });
    let path = directory.join(INSTALL_RECORD);
    std::fs::write(&path, format!("{record:#}\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn remove_tree(path: &Path) -> anyhow::Result<()> {
    std::fs::remove_dir_all(path).with_context(|| {
        format!(
            "cannot remove {}; remove it by hand (discovery skips it)",
            path.display()
        )
    })
}

/// A plugin copied or unpacked into a staging directory of the global directory and
/// checked there; the staging directory goes when this is dropped.
#[derive(Debug)]
struct Staged {
    /// The staging directory.
    area: PathBuf,
    /// The plugin root inside it.
    root: PathBuf,
    id: String,
    version: Option<String>,
    source: PathBuf,
    kind: &'static str,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.area);
    }
}

impl Staged {
    fn prepare(inventory: &Inventory, global: &Path, source: &Path) -> anyhow::Result<Self> {
        let metadata = std::fs::metadata(source)
            .with_context(|| format!("cannot read {}", source.display()))?;
        let area = sibling(&global.join("install"), "staging");
        std::fs::create_dir(&area).with_context(|| format!("cannot create {}", area.display()))?;
        let mut staged = Self {
            root: area.join("plugin"),
            area,
            id: String::new(),
            version: None,
            source: source.to_path_buf(),
            kind: "directory",
        };
        let unpacked = staged.area.join("plugin");
        if metadata.is_dir() {
            let mut budget = Budget::default();
            copy_dir(source, &unpacked, &mut budget)?;
        } else {
            let extension = |path: &Path, wanted: &str| {
                path.extension()
                    .is_some_and(|found| found.eq_ignore_ascii_case(wanted))
            };
            let stem = Path::new(source.file_stem().unwrap_or_default());
            std::fs::create_dir(&unpacked)?;
            if extension(source, "tgz") || (extension(source, "gz") && extension(stem, "tar")) {
                staged.kind = "archive";
                unpack_tar(source, &unpacked)?;
            } else if extension(source, "zip") {
                staged.kind = "archive";
                unpack_zip(source, &unpacked)?;
            } else {
                bail!(
                    "{} is neither a directory nor a .tgz, .tar.gz or .zip archive",
                    source.display()
                );
            }
        }
        let manifest_name = &inventory.config.outpost.manifest_name;
        staged.root = plugin_root(&unpacked, manifest_name);
        let manifest = read_manifest(&staged.root.join(manifest_name), source)?;
        if manifest.id.contains('/') || manifest.id.starts_with('.') {
            bail!(
                "the manifest id `{}` cannot name a directory of the global extensions directory",
                manifest.id
            );
        }
        refuse_install_scripts(&staged.root, source)?;
        staged.id.clone_from(&manifest.id);
        staged.version.clone_from(&manifest.version);
        staged.check(inventory)?;
        Ok(staged)
    }

    /// Runs the control plane on the staged copy alone: the safety gates, the manifest,
    /// the `outpost` block, the launch and the config schema, with the operator's
    /// `manifestName`, `binPath` and the plugin's `plugins.entries.<id>.config`.
    fn check(&self, inventory: &Inventory) -> anyhow::Result<()> {
        let empty = self.area.join("empty");
        std::fs::create_dir_all(&empty)?;
        let outpost = &inventory.config.outpost;
        let mut entry = serde_json::Map::new();
        if let Some(config) = inventory
            .config
            .plugins
            .entries
            .get(&self.id.to_lowercase())
            .and_then(|entry| entry.config.clone())
        {
            entry.insert("config".into(), Value::Object(config));
        }
        let check = json!({
            "plugins": {
                "load": { "paths": [self.root] },
                "entries": { (self.id.clone()): entry },
            },
            "outpost": {
                "workspace": empty,
                "globalDir": empty,
                "bundledDir": empty,
                "manifestName": outpost.manifest_name,
                "binPath": outpost.bin_path,
            },
        });
        let path = self.area.join("check.json5");
        std::fs::write(&path, check.to_string())?;
        let checked = control::load(&path)?;
        let Some(record) = checked.get(&self.id) else {
            bail!(
                "{}: the staged copy was not discovered as `{}`",
                self.source.display(),
                self.id
            );
        };
        let problems: Vec<String> = record
            .diagnostics
            .iter()
            .map(|diagnostic| format!("  {diagnostic}"))
            .collect();
        match record.status {
            Status::Blocked | Status::Error => bail!(
                "{} is not installed: `{}` is {}: {}\n{}",
                self.source.display(),
                self.id,
                record.status,
                record.reason,
                problems.join("\n")
            ),
            _ => {
                for problem in problems {
                    println!("{problem}");
                }
            }
        }
        Ok(())
    }
}

/// The plugin root of an unpacked tree: itself when it holds the manifest, else its
/// only directory (an npm pack tarball's `package/`).
fn plugin_root(unpacked: &Path, manifest_name: &str) -> PathBuf {
    if unpacked.join(manifest_name).is_file() {
        return unpacked.to_path_buf();
    }
    let children: Vec<PathBuf> = std::fs::read_dir(unpacked)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect()
        })
        .unwrap_or_default();
    match children.as_slice() {
        [only] if only.is_dir() && only.join(manifest_name).is_file() => only.clone(),
        _ => unpacked.to_path_buf(),
    }
}

fn read_manifest(path: &Path, source: &Path) -> anyhow::Result<Manifest> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let text = std::fs::read_to_string(path).map_err(|_| {
        anyhow::anyhow!(
            "{} holds no {name} (nor a single directory that does): every plugin needs a manifest",
            source.display()
        )
    })?;
    Manifest::parse(&text)
        .map_err(|error| anyhow::anyhow!("{}: invalid {name}: {error}", source.display()))
}

/// Outpost never runs install scripts, so a plugin that needs them would not be
/// installed as its author built it: refused, with the scripts named.
fn refuse_install_scripts(root: &Path, source: &Path) -> anyhow::Result<()> {
    let mut found = Vec::new();
    if let Ok(text) = std::fs::read_to_string(root.join("package.json"))
        && let Ok(package) = serde_json::from_str::<Value>(&text)
        && let Some(scripts) = package.get("scripts").and_then(Value::as_object)
    {
        found.extend(
            INSTALL_SCRIPTS
                .iter()
                .filter(|name| scripts.contains_key(**name))
                .map(|name| format!("scripts.{name}")),
        );
    }
    if root.join("binding.gyp").exists() {
        found.push("binding.gyp (npm would build it with node-gyp)".to_owned());
    }
    if found.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} is not installed: its package.json asks for install scripts ({}), and Outpost runs none (as `npm install --ignore-scripts`); build the plugin first and install the result without them",
            source.display(),
            found.join(", ")
        )
    }
}

/// What an install may still write.
#[derive(Debug)]
struct Budget {
    bytes: u64,
    members: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            bytes: MAX_UNPACKED_BYTES,
            members: MAX_MEMBERS,
        }
    }
}

impl Budget {
    fn member(&mut self, name: &Path) -> anyhow::Result<()> {
        if self.members == 0 {
            bail!(
                "more than {MAX_MEMBERS} files (at {}); not installed",
                name.display()
            );
        }
        self.members -= 1;
        Ok(())
    }

    /// Copies `reader` into a new file `to`, 0755 when `executable`, else 0644.
    fn write(&mut self, reader: &mut impl Read, to: &Path, executable: bool) -> anyhow::Result<()> {
        self.member(to)?;
        let mut file =
            File::create_new(to).with_context(|| format!("cannot create {}", to.display()))?;
        let written = io::copy(&mut reader.take(self.bytes + 1), &mut file)
            .with_context(|| format!("cannot write {}", to.display()))?;
        if written > self.bytes {
            bail!(
                "more than {} MiB unpacked (at {}); not installed",
                MAX_UNPACKED_BYTES / (1024 * 1024),
                to.display()
            );
        }
        self.bytes -= written;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }
}

/// Copies a plugin directory: files with normalised modes, links as links (the safety
/// gates then judge where they point), `.git` left out; anything else is refused.
fn copy_dir(from: &Path, to: &Path, budget: &mut Budget) -> anyhow::Result<()> {
    std::fs::create_dir(to).with_context(|| format!("cannot create {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?
    {
        let entry = entry?;
        if entry.file_name() == ".git" || entry.file_name() == INSTALL_RECORD {
            continue;
        }
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            budget.member(&source)?;
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            budget.member(&source)?;
            copy_dir(&source, &target, budget)?;
        } else if kind.is_file() {
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            let mut file =
                File::open(&source).with_context(|| format!("cannot read {}", source.display()))?;
            budget.write(&mut file, &target, executable)?;
        } else {
            bail!(
                "{} is not a file, directory or link; not installed",
                source.display()
            );
        }
    }
    Ok(())
}

/// The path of an archive member below `into`, or why it is refused.
fn member_path(into: &Path, name: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut path = into.to_path_buf();
    let mut depth = 0;
    for component in name.components() {
        match component {
            Component::Normal(part) => {
                path.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            _ => bail!(
                "the archive member `{}` would land outside the plugin directory; not installed",
                name.display()
            ),
        }
    }
    Ok((depth > 0).then_some(path))
}

fn create_parents(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

fn unpack_tar(archive: &Path, into: &Path) -> anyhow::Result<()> {
    let file = File::open(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut budget = Budget::default();
    let unreadable = |error: io::Error| {
        anyhow::anyhow!(
            "{} is not a readable gzip-compressed tar archive: {error}",
            archive.display()
        )
    };
    for member in tar.entries().map_err(unreadable)? {
        let mut member = member.map_err(unreadable)?;
        let name = member.path().map_err(unreadable)?.into_owned();
        let kind = member.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            continue;
        }
        let Some(path) = member_path(into, &name)? else {
            continue;
        };
        match kind {
            tar::EntryType::Directory => {
                budget.member(&name)?;
                std::fs::create_dir_all(&path)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                create_parents(&path)?;
                let executable = member.header().mode().unwrap_or(0o644) & 0o111 != 0;
                budget.write(&mut member, &path, executable)?;
            }
            other => bail!(
                "the archive member `{}` is a {other:?}, not a file or directory; archives with links or devices are not installed",
                name.display()
            ),
        }
    }
    Ok(())
}

fn unpack_zip(archive: &Path, into: &Path) -> anyhow::Result<()> {
    let file = File::open(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let unreadable = |error: zip::result::ZipError| {
        anyhow::anyhow!(
            "{} is not a readable zip archive: {error}",
            archive.display()
        )
    };
    let mut zip = zip::ZipArchive::new(file).map_err(unreadable)?;
    let mut budget = Budget::default();
    for index in 0..zip.len() {
        let mut member = zip.by_index(index).map_err(unreadable)?;
        let name = PathBuf::from(member.name().map_err(unreadable)?.as_ref());
        let Some(path) = member_path(into, &name)? else {
            continue;
        };
        let mode = member.unix_mode();
        if mode.is_some_and(|mode| mode & 0o170_000 == 0o120_000) {
            bail!(
                "the archive member `{}` is a link; archives with links are not installed",
                name.display()
            );
        }
        if member.is_dir() {
            budget.member(&name)?;
            std::fs::create_dir_all(&path)?;
        } else {
            create_parents(&path)?;
            let executable = mode.is_some_and(|mode| mode & 0o111 != 0);
            budget.write(&mut member, &path, executable)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Value {
        json5::from_str(text).unwrap_or_else(|e| panic!("not JSON5: {e}\n{text}"))
    }

    #[test]
    fn enable_and_disable_edit_only_the_entry_and_keep_the_rest_as_written() {
        let text = "// outpost\n{\n  plugins: {\n    // reviewed\n    entries: {\n      Acme: { enabled: false, config: { region: 'eu' } },\n    },\n  },\n}\n";
        let edit = set_enabled(text, "acme", true).unwrap();
        assert_eq!(edit.text, text.replace("enabled: false", "enabled: true"));
        assert!(edit.notes.is_empty());
        let back = set_enabled(&edit.text, "acme", false).unwrap();
        assert_eq!(back.text, text);
        let again = set_enabled(text, "acme", false).unwrap();
        assert_eq!(again.text, text, "already disabled: nothing changes");
    }

    #[test]
    fn enable_creates_what_is_missing_and_joins_a_set_allowlist() {
        let edit = set_enabled("{}", "acme", true).unwrap();
        assert_eq!(
            parsed(&edit.text),
            json!({"plugins": {"entries": {"acme": {"enabled": true}}}})
        );
        let text = "{ plugins: { allow: ['other'], enabled: false } }";
        let edit = set_enabled(text, "acme", true).unwrap();
        assert_eq!(
            parsed(&edit.text)["plugins"]["allow"],
            json!(["other", "acme"])
        );
        assert_eq!(edit.notes.len(), 2, "{:?}", edit.notes);
        // Disabling never touches the allowlist.
        let edit = set_enabled(text, "acme", false).unwrap();
        assert_eq!(parsed(&edit.text)["plugins"]["allow"], json!(["other"]));
    }

    #[test]
    fn enable_refuses_what_it_cannot_do_and_says_why() {
        for (text, reason) in [
            ("{ plugins: { deny: ['ACME'] } }", "deny always wins"),
            ("{ plugins: [] }", "`plugins` is not an object"),
            (
                "{ plugins: { entries: { acme: true } } }",
                "`plugins.entries.acme` is not an object",
            ),
            (
                "{ plugins: { allow: 'acme' } }",
                "`plugins.allow` is not a list",
            ),
            ("[]", "top level is not an object"),
        ] {
            let error = set_enabled(text, "acme", true).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    /// A temporary config with a global directory, and a plugin directory for `id`
    /// whose entry is `plugin.py`.
    fn setup(id: &str) -> (tempfile::TempDir, Inventory, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("outpost.json5");
        std::fs::write(
            &config,
            "{ outpost: { globalDir: 'ext', bundledDir: 'none' } }",
        )
        .unwrap();
        let source = dir.path().join("src");
        std::fs::create_dir_all(&source).unwrap();
        let manifest = json!({
            "id": id,
            "configSchema": {"type": "object"},
            "outpost": {"command": "sh", "args": ["plugin.py"], "entry": "plugin.py"},
        });
        std::fs::write(source.join("openclaw.plugin.json"), manifest.to_string()).unwrap();
        std::fs::write(source.join("plugin.py"), "# never run\n").unwrap();
        let inventory = control::load(&config).unwrap();
        let global = global_dir(&inventory).unwrap();
        (dir, inventory, source, global)
    }

    fn staged_names(global: &Path) -> Vec<String> {
        std::fs::read_dir(global)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_directory_is_copied_with_normalised_modes_and_checked_before_it_lands() {
        let (_dir, inventory, source, global) = setup("acme");
        std::fs::set_permissions(
            source.join("plugin.py"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let staged = Staged::prepare(&inventory, &global, &source).unwrap();
        assert_eq!(staged.id, "acme");
        let mode = std::fs::metadata(staged.root.join("plugin.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        drop(staged);
        assert!(
            staged_names(&global).is_empty(),
            "the staging directory goes"
        );
    }

    #[test]
    fn a_copy_the_safety_gates_block_is_not_installed() {
        let (_dir, inventory, source, global) = setup("acme");
        std::fs::remove_file(source.join("plugin.py")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", source.join("plugin.py")).unwrap();
        let error = Staged::prepare(&inventory, &global, &source)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not installed: `acme` is blocked"),
            "{error}"
        );
        assert!(error.contains("plugin.py"), "{error}");
        assert!(staged_names(&global).is_empty());
    }

    #[test]
    fn install_scripts_are_refused() {
        let (_dir, inventory, source, global) = setup("acme");
        std::fs::write(
            source.join("package.json"),
            r#"{"name": "acme", "scripts": {"test": "x", "postinstall": "node build.js"}}"#,
        )
        .unwrap();
        let error = Staged::prepare(&inventory, &global, &source)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("install scripts (scripts.postinstall)"),
            "{error}"
        );
    }

    #[test]
    fn a_tarball_is_unpacked_from_its_package_directory_and_links_are_refused() {
        let (dir, inventory, source, global) = setup("acme");
        let tarball = |name: &str, link: bool| {
            let path = dir.path().join(name);
            let gz = flate2::write::GzEncoder::new(
                File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            let mut tar = tar::Builder::new(gz);
            tar.append_dir_all("package", &source).unwrap();
            if link {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, "package/extra", "/etc/passwd")
                    .unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
            path
        };
        let staged = Staged::prepare(&inventory, &global, &tarball("acme.tgz", false)).unwrap();
        assert_eq!((staged.id.as_str(), staged.kind), ("acme", "archive"));
        assert!(staged.root.ends_with("package"));
        drop(staged);
        let error = Staged::prepare(&inventory, &global, &tarball("acme.tar.gz", true))
            .unwrap_err()
            .to_string();
        assert!(error.contains("archives with links"), "{error}");
        assert!(staged_names(&global).is_empty());
    }

    #[test]
    fn a_zip_member_that_leaves_the_directory_is_refused() {
        let (dir, inventory, _source, global) = setup("acme");
        let path = dir.path().join("acme.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        zip.start_file("../evil.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, b"x").unwrap();
        zip.finish().unwrap();
        let error = Staged::prepare(&inventory, &global, &path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("would land outside"), "{error}");
        assert!(!dir.path().join("evil.txt").exists());
    }

    #[test]
    fn archive_members_stay_inside() {
        let into = Path::new("/x");
        assert_eq!(
            member_path(into, Path::new("./package/a.js")).unwrap(),
            Some(PathBuf::from("/x/package/a.js"))
        );
        assert_eq!(member_path(into, Path::new("./")).unwrap(), None);
        for bad in ["../a", "/etc/passwd", "package/../../a"] {
            assert!(member_path(into, Path::new(bad)).is_err(), "{bad}");
        }
    }
}
