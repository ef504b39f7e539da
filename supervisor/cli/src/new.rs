//! `outpost new plugin --lang rust|python|node DIR`: writes a working plugin root
//! (manifest, code, README) from the templates in `supervisor/cli/templates/`.
//!
//! The templates are embedded in the binary. Each is a complete plugin that passes the
//! conformance suite as generated: one tool, one command, `ping`, cancellation,
//! shutdown and exit at EOF. Names in them are placeholders (`__PLUGIN_ID__`...) filled
//! in from the plugin id, which defaults to the directory's name.
//!
//! Nothing is overwritten: the directory must be new or empty, and files are created
//! with `create_new`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub(crate) enum NewCommand {
    /// Create a plugin (manifest, code, README) that passes the conformance suite as it
    /// is.
    Plugin(PluginArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PluginArgs {
    /// The language to write the plugin in.
    #[arg(long, value_enum)]
    pub(crate) lang: Lang,
    /// The plugin id: lowercase letters, digits and `-`, starting with a letter.
    /// Default: the directory's name.
    #[arg(long, value_name = "ID")]
    pub(crate) id: Option<String>,
    /// The directory to create the plugin in; it must not exist or be empty.
    pub(crate) dir: PathBuf,
}

/// The languages there is a template for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    /// Rust, on the Outpost SDK (`outpost-sdk`).
    Rust,
    /// Python 3.11 or newer, standard library only.
    Python,
    /// Node.js 20 or newer, standard library only.
    Node,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Node => "Node.js",
        })
    }
}

/// One file of a template: where it goes in the plugin root, and its text.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($($path:literal => $source:literal),* $(,)?) => {
        &[$(TemplateFile { path: $path, text: include_str!(concat!("../templates/", $source)) }),*]
    };
}

const RUST: &[TemplateFile] = template![
    "openclaw.plugin.json" => "rust/openclaw.plugin.json",
    "Cargo.toml" => "rust/Cargo.toml.template",
    "src/main.rs" => "rust/src/main.rs",
    "README.md" => "rust/README.md",
    ".gitignore" => "rust/gitignore",
];
const PYTHON: &[TemplateFile] = template![
    "openclaw.plugin.json" => "python/openclaw.plugin.json",
    "plugin.py" => "python/plugin.py",
    "README.md" => "python/README.md",
];
const NODE: &[TemplateFile] = template![
    "openclaw.plugin.json" => "node/openclaw.plugin.json",
    "plugin.js" => "node/plugin.js",
    "README.md" => "node/README.md",
];

impl Lang {
    fn files(self) -> &'static [TemplateFile] {
        match self {
            Self::Rust => RUST,
            Self::Python => PYTHON,
            Self::Node => NODE,
        }
    }
}

/// The longest plugin id accepted: the tool is named `<id>_greet`, and tool names stop
/// at 64 characters.
const MAX_ID_LEN: usize = 48;

/// Names a Rust package cannot have (Cargo refuses them or they shadow the standard
/// crates), checked for `--lang rust` only.
const RUST_RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc-macro",
    "std",
    "test",
    "self",
    "super",
    "crate",
    "async",
    "await",
    "dyn",
    "fn",
    "impl",
    "mod",
    "move",
    "type",
    "use",
    "where",
];

/// Why `outpost new plugin` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NewError {
    #[error(
        "cannot take a plugin id from the directory `{}`: it has no name; pass --id ID",
        dir.display()
    )]
    NoDirectoryName { dir: PathBuf },
    #[error("`{id}` is not a valid plugin id: {problem}; {hint}")]
    BadId {
        id: String,
        problem: &'static str,
        hint: String,
    },
    #[error("the plugin id `{id}` is reserved by OpenClaw core; pass --id with another id")]
    ReservedId { id: String },
    #[error("`{id}` cannot name a Rust package (Cargo reserves it); pass --id with another id")]
    RustReserved { id: String },
    #[error("{} exists and is not a directory; choose a new directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error(
        "{} is not empty: {} would be in the way; choose a new or empty directory",
        dir.display(),
        list_entries(entries, *more)
    )]
    NotEmpty {
        dir: PathBuf,
        entries: Vec<String>,
        more: usize,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn list_entries(entries: &[String], more: usize) -> String {
    let mut list: Vec<String> = entries.iter().map(|e| format!("`{e}`")).collect();
    if more > 0 {
        list.push(format!("{more} more"));
    }
    match list.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A plugin root written from a template.
#[derive(Debug)]
pub(crate) struct Scaffold {
    /// The plugin root, absolute.
    pub(crate) root: PathBuf,
    pub(crate) id: String,
    pub(crate) lang: Lang,
    /// The files written, relative to `root`.
    pub(crate) files: Vec<&'static str>,
    /// For Rust: where `Cargo.toml` says the SDK is.
    pub(crate) sdk: Option<SdkSource>,
}

pub(crate) fn run(command: NewCommand) -> anyhow::Result<ExitCode> {
    let NewCommand::Plugin(args) = command;
    let scaffold = scaffold(args.lang, &args.dir, args.id.as_deref())?;
    print_next_steps(&scaffold, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the `lang` template into `dir` for the plugin `id` (default: the directory's
/// name).
pub(crate) fn scaffold(lang: Lang, dir: &Path, id: Option<&str>) -> Result<Scaffold, NewError> {
    let root = std::path::absolute(dir).map_err(|source| NewError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let id = match id {
        Some(id) => id.to_owned(),
        None => root
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| !matches!(*name, "." | ".."))
            .ok_or_else(|| NewError::NoDirectoryName {
                dir: dir.to_owned(),
            })?
            .to_owned(),
    };
    check_id(&id, lang)?;
    check_empty(&root)?;

    let names = Names::new(&id, &root);
    let mut files = Vec::new();
    for file in lang.files() {
        let path = root.join(file.path);
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut out = std::fs::File::create_new(path)?;
            out.write_all(names.render(file.text).as_bytes())?;
            out.sync_all()
        };
        write(&path).map_err(|source| NewError::Write { path, source })?;
        files.push(file.path);
    }
    let mut sdk = None;
    if lang == Lang::Rust {
        // The versions Outpost was tested with, so the first build resolves nothing new.
        let path = root.join("Cargo.lock");
        std::fs::write(&path, rust_lock(&id)).map_err(|source| NewError::Write { path, source })?;
        files.push("Cargo.lock");
        sdk = Some(names.sdk);
    }
    Ok(Scaffold {
        root,
        id,
        lang,
        files,
        sdk,
    })
}

/// A plugin id: what the manifest, the registry and (for Rust) Cargo accept.
fn check_id(id: &str, lang: Lang) -> Result<(), NewError> {
    let problem = if id.is_empty() {
        Some("it is empty")
    } else if id.len() > MAX_ID_LEN {
        Some("it is longer than 48 characters")
    } else if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lowercase letter")
    } else if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("use only lowercase letters, digits and `-`")
    } else if id.ends_with('-') || id.contains("--") {
        Some("a `-` must sit between two letters or digits")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(NewError::BadId {
            id: id.to_owned(),
            problem,
            hint: suggest_id(id).map_or_else(
                || "pass --id ID, for example --id my-plugin".to_owned(),
                |suggestion| format!("pass --id {suggestion}"),
            ),
        });
    }
    let reserved = outpost_supervisor::control::RESERVED_PLUGIN_IDS;
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(id)) {
        return Err(NewError::ReservedId { id: id.to_owned() });
    }
    if lang == Lang::Rust && RUST_RESERVED.contains(&id) {
        return Err(NewError::RustReserved { id: id.to_owned() });
    }
    Ok(())
}

/// A valid id close to `id` (`My_Plugin` -> `my-plugin`), if there is one.
fn suggest_id(id: &str) -> Option<String> {
    let mut suggestion = String::new();
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            suggestion.push(c.to_ascii_lowercase());
        } else if !suggestion.is_empty() && !suggestion.ends_with('-') {
            suggestion.push('-');
        }
    }
    let suggestion = suggestion
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
        .trim_end_matches('-');
    let suggestion: String = suggestion.chars().take(MAX_ID_LEN).collect();
    let suggestion = suggestion.trim_end_matches('-');
    (!suggestion.is_empty() && suggestion != id).then(|| suggestion.to_owned())
}

/// The directory must not exist, or be an empty directory.
fn check_empty(root: &Path) -> Result<(), NewError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) if root.exists() && !root.is_dir() => {
            return Err(NewError::NotADirectory {
                dir: root.to_owned(),
            });
        }
        Err(source) => {
            return Err(NewError::Write {
                path: root.to_owned(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                format!("{name}/")
            } else {
                name
            }
        })
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let shown = 5;
    let more = names.len().saturating_sub(shown);
    names.truncate(shown);
    Err(NewError::NotEmpty {
        dir: root.to_owned(),
        entries: names,
        more,
    })
}

/// What the placeholders of the templates stand for.
struct Names {
    id: String,
    name: String,
    tool: String,
    command: String,
    dir_name: String,
    sdk: SdkSource,
}

impl Names {
    fn new(id: &str, root: &Path) -> Self {
        // "my-plugin" -> "My plugin".
        let mut name: String = id.replace('-', " ");
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        // The command is named after the plugin, unless the gateway keeps that name for
        // one of its own commands.
        let command = if outpost_protocol::RESERVED_COMMANDS.contains(&id) {
            format!("{id}-info")
        } else {
            id.to_owned()
        };
        Self {
            id: id.to_owned(),
            name,
            tool: format!("{}_greet", id.replace('-', "_")),
            command,
            dir_name: root
                .file_name()
                .map_or_else(|| id.to_owned(), |n| n.to_string_lossy().into_owned()),
            sdk: sdk_source(),
        }
    }

    fn render(&self, template: &str) -> String {
        template
            .replace("__PLUGIN_ID__", &self.id)
            .replace("__PLUGIN_NAME__", &self.name)
            .replace("__TOOL_NAME__", &self.tool)
            .replace("__COMMAND_NAME__", &self.command)
            .replace("__DIR_NAME__", &self.dir_name)
            .replace("__SDK_DEPENDENCY__", &sdk_dependency(&self.sdk))
    }
}

/// Where the Outpost SDK's sources are installed beside the binary (`scripts/install.sh`
/// puts them there): `<prefix>/bin/outpost` -> `<prefix>/share/outpost/rust/outpost-sdk`.
pub(crate) const INSTALLED_SDK: &str = "../share/outpost/rust/outpost-sdk";

/// Where a generated Rust plugin finds the SDK, and whether it is there.
#[derive(Debug)]
pub(crate) struct SdkSource {
    /// The SDK's directory (its `Cargo.toml`).
    pub(crate) dir: PathBuf,
    /// Whether `dir` holds the SDK now.
    pub(crate) found: bool,
}

/// The SDK a generated Rust plugin depends on, by path, offline: the sources installed
/// beside this binary (`<exe>/../share/outpost/rust/outpost-sdk`); else, for an
/// `outpost` built in a source checkout that is still there, its `sdk-rust/`; else the
/// installed place, where it is missing.
pub(crate) fn sdk_source() -> SdkSource {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .and_then(|exe| Some(exe.parent()?.join(INSTALLED_SDK)));
    let installed = installed.map(|dir| dir.canonicalize().unwrap_or(dir));
    if let Some(dir) = &installed
        && dir.join("Cargo.toml").is_file()
    {
        return SdkSource {
            dir: dir.clone(),
            found: true,
        };
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk-rust");
    if let Ok(dir) = checkout.canonicalize()
        && dir.join("Cargo.toml").is_file()
    {
        return SdkSource { dir, found: true };
    }
    SdkSource {
        dir: installed
            .unwrap_or_else(|| PathBuf::from("/usr/local/share/outpost/rust/outpost-sdk")),
        found: false,
    }
}

/// `outpost-sdk = { path = "..." }`, a TOML inline table.
fn sdk_dependency(sdk: &SdkSource) -> String {
    let dir = sdk.dir.to_string_lossy();
    let escaped = dir.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{{ path = \"{escaped}\" }}")
}

/// The `Cargo.lock` of a generated Rust plugin: the entries of this workspace's own
/// lock file (the versions Outpost was built and tested with) that the plugin's
/// dependencies reach, and the plugin itself. Cargo drops the entries of features the
/// plugin does not turn on at its first build.
pub(crate) fn rust_lock(id: &str) -> String {
    lock_for(WORKSPACE_LOCK, id, &["outpost-sdk", "serde", "serde_json"])
}

/// The workspace's `Cargo.lock`, as this binary was built with it.
const WORKSPACE_LOCK: &str = include_str!("../../../Cargo.lock");

/// The manifests of the workspace's crates a plugin depends on: a lock file lists the
/// dev-dependencies of such path packages too, which a plugin never builds.
const PATH_MANIFESTS: &[(&str, &str)] = &[
    ("outpost-sdk", include_str!("../../../sdk-rust/Cargo.toml")),
    (
        "outpost-protocol",
        include_str!("../../../protocol/Cargo.toml"),
    ),
];

/// The names under `[dependencies]`, `[target.'...'.dependencies]` and
/// `[build-dependencies]` of a Cargo manifest (not `[dev-dependencies]`).
fn normal_dependencies(manifest: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line.ends_with("dependencies]") && !line.ends_with("dev-dependencies]");
        } else if inside && let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            names.push(key.strip_suffix(".workspace").unwrap_or(key).trim());
        }
    }
    names
}

/// One `[[package]]` of a lock file.
struct LockEntry<'a> {
    name: &'a str,
    version: &'a str,
    dependencies: Vec<&'a str>,
    text: &'a str,
}

const SEPARATOR: &str = "\n[[package]]\n";

fn push_entry(out: &mut String, entry: &str) {
    out.push_str(SEPARATOR);
    out.push_str(entry);
    out.push('\n');
}

fn lock_for(lock: &str, id: &str, roots: &[&str]) -> String {
    let mut blocks = lock.split(SEPARATOR);
    let header = blocks.next().unwrap_or_default();
    let entries: Vec<LockEntry<'_>> = blocks
        .map(|text| {
            let field = |key: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(key)?.strip_prefix(" = \""))
                    .map_or("", |value| value.trim_end_matches('"'))
            };
            let dependencies = text
                .split_once("dependencies = [\n")
                .map(|(_, list)| {
                    list.lines()
                        .take_while(|line| !line.starts_with(']'))
                        .map(|line| line.trim().trim_end_matches(',').trim_matches('"'))
                        .collect()
                })
                .unwrap_or_default();
            let name = field("name");
            let mut dependencies: Vec<&str> = dependencies;
            if let Some((_, manifest)) = PATH_MANIFESTS.iter().find(|(path, _)| *path == name) {
                let normal = normal_dependencies(manifest);
                dependencies.retain(|d| normal.contains(&d.split(' ').next().unwrap_or(d)));
            }
            LockEntry {
                name,
                version: field("version"),
                dependencies,
                text: text.trim_end(),
            }
        })
        .collect();
    // A dependency is `name`, `name version` or `name version (source)`.
    let find = |dependency: &str| -> Option<usize> {
        let mut words = dependency.split(' ');
        let name = words.next()?;
        let version = words.next();
        let mut matching = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.name == name && version.is_none_or(|v| v == entry.version));
        let first = matching.next()?;
        // Several versions and none named: the newest.
        Some(
            matching
                .fold(first, |best, next| {
                    if newer(next.1.version, best.1.version) {
                        next
                    } else {
                        best
                    }
                })
                .0,
        )
    };
    let mut keep = vec![false; entries.len()];
    let mut root_dependencies = Vec::new();
    let mut queue: Vec<usize> = Vec::new();
    for root in roots {
        if let Some(index) = find(root) {
            let several = entries.iter().filter(|e| e.name == *root).count() > 1;
            root_dependencies.push(if several {
                format!("{} {}", root, entries[index].version)
            } else {
                (*root).to_owned()
            });
            queue.push(index);
        }
    }
    while let Some(index) = queue.pop() {
        if std::mem::replace(&mut keep[index], true) {
            continue;
        }
        queue.extend(entries[index].dependencies.iter().filter_map(|d| find(d)));
    }
    let plugin = path_entry(id, "0.1.0", &root_dependencies);
    let mut out = header.trim_end().to_owned();
    out.push('\n');
    let mut plugin_written = false;
    for (entry, kept) in entries.iter().zip(keep) {
        if !plugin_written && entry.name > id {
            push_entry(&mut out, &plugin);
            plugin_written = true;
        }
        if kept && PATH_MANIFESTS.iter().any(|(name, _)| *name == entry.name) {
            let text = path_entry(entry.name, entry.version, &entry.dependencies);
            push_entry(&mut out, &text);
        } else if kept {
            push_entry(&mut out, entry.text);
        }
    }
    if !plugin_written {
        push_entry(&mut out, &plugin);
    }
    out
}

/// The lock entry of a path package.
fn path_entry(name: &str, version: &str, dependencies: &[impl AsRef<str>]) -> String {
    let mut text = format!("name = \"{name}\"\nversion = \"{version}\"");
    if !dependencies.is_empty() {
        text.push_str("\ndependencies = [\n");
        for dependency in dependencies {
            text.push_str(" \"");
            text.push_str(dependency.as_ref());
            text.push_str("\",\n");
        }
        text.push(']');
    }
    text
}

/// Whether version `a` is newer than `b` (numeric parts compared in order).
fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '+'])
            .map(|part| part.parse().unwrap_or(0))
            .collect()
    };
    parts(a) > parts(b)
}

/// What was written, and what to do next.
pub(crate) fn print_next_steps(scaffold: &Scaffold, out: &mut impl Write) -> std::io::Result<()> {
    let root = scaffold.root.display();
    writeln!(
        out,
        "Created the {} plugin `{}` in {root}:",
        scaffold.lang, scaffold.id
    )?;
    for file in &scaffold.files {
        writeln!(out, "  {file}")?;
    }
    writeln!(out)?;
    if let Some(sdk) = &scaffold.sdk {
        if sdk.found {
            writeln!(
                out,
                "Cargo.toml takes the Outpost SDK from {} (no registry needed).",
                sdk.dir.display()
            )?;
        } else {
            writeln!(
                out,
                "warning: the Outpost SDK is not at {}, where Cargo.toml looks for it: install\n\
                 Outpost with scripts/install.sh (README, \"Install\"), or point `outpost-sdk`\n\
                 in Cargo.toml at the sdk-rust/ directory of an Outpost checkout.",
                sdk.dir.display()
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Next steps:")?;
    let mut step = 1;
    if scaffold.lang == Lang::Rust {
        writeln!(
            out,
            "  {step}. Build it:    (cd {root} && cargo build --release)"
        )?;
        step += 1;
    }
    writeln!(
        out,
        "  {step}. Check it:    outpost-conformance run --plugin-dir {root}"
    )?;
    writeln!(
        out,
        "  {}. Enable it:   add \"{root}\" to plugins.load.paths in your Outpost config,",
        step + 1
    )?;
    writeln!(
        out,
        "                  then `outpost plugins inspect {}` and `outpost serve`",
        scaffold.id
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{root}/README.md tells how to change it. `outpost` and `outpost-conformance` are\n\
         on PATH once Outpost is installed (scripts/install.sh, in Outpost's README)."
    )?;
    Ok(())
}
