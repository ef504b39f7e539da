//! Discovery: where plugin roots are found, in precedence order.
//!
//! 1. `plugins.load.paths` (origin `config`): a directory that is a plugin root, a
//!    directory of plugin roots, or a file (its directory is the root);
//! 2. `<workspace>/.openclaw/extensions/*` (origin `workspace`);
//! 3. `outpost.globalDir/*`, by default `~/.openclaw/extensions/*` (origin `global`);
//! 4. `outpost.bundledDir/*`, the plugins shipped with Outpost (origin `bundled`).
//!
//! A plugin root is a directory holding the manifest, or a `package.json` whose
//! `openclaw.extensions` makes it a package pack. Discovery reads nothing but directory
//! listings and `package.json`: the gates, the manifest and everything after happen in
//! the inventory, so a root found here may still be blocked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::config::Config;
use super::diagnostic::{Code, Diagnostic, index_path};
use super::plugin_id;
use super::text::{self, ReadError};

/// The largest `package.json` read.
const MAX_PACKAGE_JSON_BYTES: u64 = 1024 * 1024;

/// Directory names never scanned for plugins (as in OpenClaw), besides names ending in
/// `.bak` or containing `.backup-` or `.disabled`.
const IGNORED_DIRECTORIES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".turbo",
    ".yarn",
    ".yarn-cache",
    "build",
    "coverage",
    "dist",
    "node_modules",
];

/// Where a plugin was found, in precedence order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `plugins.load.paths`: installed or linked by the operator; on by default.
    Config,
    /// `<workspace>/.openclaw/extensions`: development code; off by default.
    Workspace,
    /// The user's extensions directory: installed plugins; on by default.
    Global,
    /// Shipped with Outpost: off unless on by default or enabled.
    Bundled,
}

impl Origin {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Workspace => "workspace",
            Self::Global => "global",
            Self::Bundled => "bundled",
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A discovered plugin root.
#[derive(Clone, Debug)]
pub(crate) struct FoundRoot {
    pub(crate) origin: Origin,
    /// The root as found (not resolved).
    pub(crate) root: PathBuf,
    /// A file a load path named inside the root (other than the manifest).
    pub(crate) named_file: Option<PathBuf>,
    /// For bundled plugins: the bundled directory the root must stay inside.
    pub(crate) container: Option<PathBuf>,
    /// `package.json`, when present and parsable.
    pub(crate) package: Option<PackageJson>,
}

impl FoundRoot {
    /// The id to report before the manifest is read: `package.json`'s
    /// `openclaw.plugin.id`, `openclaw.channel.id`, the unscoped package name without
    /// `-plugin`/`-provider`, or the directory name; escaped for display (it has not
    /// been checked as an id).
    pub(crate) fn id_hint(&self) -> String {
        let hint = self
            .package
            .as_ref()
            .and_then(|package| {
                package
                    .plugin_id
                    .clone()
                    .or_else(|| package.channel_id.clone())
                    .or_else(|| package.name.as_deref().and_then(package_id_hint))
            })
            .unwrap_or_else(|| file_name(&self.root));
        plugin_id::printable(&hint)
    }
}

/// What OpenClaw reads from `package.json`.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackageJson {
    pub(crate) path: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) plugin_id: Option<String>,
    pub(crate) channel_id: Option<String>,
    pub(crate) extensions: Extensions,
}

/// `package.json` `openclaw.extensions`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Extensions {
    /// Absent: not a pack.
    #[default]
    None,
    /// Malformed or empty: the root is a broken pack.
    Invalid(String),
    /// Entry files, as written (trimmed).
    List(Vec<String>),
}

/// Everything discovery found.
#[derive(Debug, Default)]
pub(crate) struct Discovery {
    pub(crate) roots: Vec<FoundRoot>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// Finds plugin roots in precedence order. The same directory found twice (a load path
/// inside the global directory, say) is kept once, at its first place.
pub(crate) fn discover(config: &Config) -> Discovery {
    let mut scan = Scan {
        manifest_name: &config.outpost.manifest_name,
        file: &config.path,
        seen: HashSet::new(),
        found: Discovery::default(),
    };
    for (index, load_path) in config.plugins.load_paths.iter().enumerate() {
        scan.load_path(&load_path.path, &load_path.raw, index);
    }
    let workspace = config
        .outpost
        .workspace
        .join(".openclaw")
        .join("extensions");
    scan.directory(&workspace, Origin::Workspace, None);
    if let Some(global) = &config.outpost.global_dir {
        scan.directory(global, Origin::Global, None);
    }
    if let Some(bundled) = &config.outpost.bundled_dir {
        let container = std::fs::canonicalize(bundled).ok();
        scan.directory(bundled, Origin::Bundled, container.as_deref());
    }
    scan.found
}

struct Scan<'a> {
    manifest_name: &'a str,
    file: &'a Path,
    seen: HashSet<PathBuf>,
    found: Discovery,
}

impl Scan<'_> {
    fn load_path(&mut self, path: &Path, raw: &str, index: usize) {
        let config_path = index_path("plugins.load.paths", index);
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => {
                let message = if error.kind() == std::io::ErrorKind::NotFound {
                    format!("`{raw}`: {} does not exist", path.display())
                } else {
                    format!("`{raw}`: cannot inspect {}: {error}", path.display())
                };
                self.found.diagnostics.push(
                    Diagnostic::error(Code::PathUnusable, message)
                        .file(self.file)
                        .path(config_path)
                        .key("paths"),
                );
                return;
            }
        };
        let before = self.found.roots.len();
        if metadata.is_file() {
            let root = path.parent().unwrap_or(Path::new("/"));
            let named_file = (path.file_name() != Some(self.manifest_name.as_ref())
                && path.file_name() != Some("package.json".as_ref()))
            .then(|| path.to_path_buf());
            self.root(root, Origin::Config, named_file, None);
        } else if self.is_plugin_root(path) {
            self.root(path, Origin::Config, None, None);
        } else {
            self.directory(path, Origin::Config, None);
        }
        if self.found.roots.len() == before && !self.already_seen(path) {
            self.found.diagnostics.push(
                Diagnostic::warning(
                    Code::PathUnusable,
                    format!(
                        "`{raw}`: no plugin found in {} (no {} or package.json with openclaw.extensions)",
                        path.display(),
                        self.manifest_name
                    ),
                )
                .file(self.file)
                .path(config_path)
                .key("paths"),
            );
        }
    }

    fn already_seen(&self, path: &Path) -> bool {
        let directory = if path.is_file() {
            path.parent().unwrap_or(path)
        } else {
            path
        };
        std::fs::canonicalize(directory).is_ok_and(|real| self.seen.contains(&real))
    }

    /// Every child directory of `dir` is a plugin root.
    fn directory(&mut self, dir: &Path, origin: Origin, container: Option<&Path>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(error) => {
                self.found.diagnostics.push(
                    Diagnostic::warning(
                        Code::PathUnusable,
                        format!(
                            "cannot list {} plugins in {}: {error}",
                            origin,
                            dir.display()
                        ),
                    )
                    .file(dir),
                );
                return;
            }
        };
        let mut children: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|entry| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                )
            })
            .filter(|(name, path)| !is_ignored(name) && path.is_dir())
            .collect();
        children.sort();
        for (_, child) in children {
            self.root(&child, origin, None, container);
        }
    }

    fn is_plugin_root(&self, dir: &Path) -> bool {
        dir.join(self.manifest_name).symlink_metadata().is_ok()
            || read_package_json(dir)
                .is_some_and(|package| package.json.extensions != Extensions::None)
    }

    fn root(
        &mut self,
        root: &Path,
        origin: Origin,
        named_file: Option<PathBuf>,
        container: Option<&Path>,
    ) {
        let key = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        if !self.seen.insert(key) {
            return;
        }
        let package = read_package_json(root);
        if let Some(package) = &package
            && let Some(problem) = &package.problem
        {
            self.found.diagnostics.push(
                Diagnostic::warning(Code::PackInvalid, problem.clone()).file(&package.json.path),
            );
        }
        self.found.roots.push(FoundRoot {
            origin,
            root: root.to_path_buf(),
            named_file,
            container: container.map(Path::to_path_buf),
            package: package.map(|package| package.json),
        });
    }
}

/// A `package.json` read, or why it is ignored.
struct PackageRead {
    json: PackageJson,
    problem: Option<String>,
}

fn read_package_json(dir: &Path) -> Option<PackageRead> {
    let path = dir.join("package.json");
    let text = match text::read_bounded(&path, MAX_PACKAGE_JSON_BYTES) {
        Ok(text) => text,
        Err(ReadError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            return Some(PackageRead {
                problem: Some(format!("package.json ignored: {error}")),
                json: PackageJson {
                    path,
                    ..PackageJson::default()
                },
            });
        }
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(error) => {
            return Some(PackageRead {
                problem: Some(format!(
                    "package.json ignored: not valid JSON ({}:{}: {error})",
                    error.line(),
                    error.column()
                )),
                json: PackageJson {
                    path,
                    ..PackageJson::default()
                },
            });
        }
    };
    let string = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let openclaw = value.get("openclaw");
    Some(PackageRead {
        json: PackageJson {
            name: string(value.get("name")),
            version: string(value.get("version")),
            plugin_id: string(
                openclaw
                    .and_then(|o| o.get("plugin"))
                    .and_then(|p| p.get("id")),
            ),
            channel_id: string(
                openclaw
                    .and_then(|o| o.get("channel"))
                    .and_then(|c| c.get("id")),
            ),
            extensions: extensions(openclaw),
            path,
        },
        problem: None,
    })
}

/// OpenClaw's reading of `openclaw.extensions`.
fn extensions(openclaw: Option<&Value>) -> Extensions {
    let openclaw = match openclaw {
        None | Some(Value::Null) => return Extensions::None,
        Some(Value::Object(openclaw)) => openclaw,
        Some(_) => return Extensions::Invalid("package.json `openclaw` must be an object".into()),
    };
    let list = match openclaw.get("extensions") {
        None | Some(Value::Null) => return Extensions::None,
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Extensions::Invalid(
                "package.json `openclaw.extensions` must be an array".into(),
            );
        }
    };
    let mut entries = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        match entry.as_str().map(str::trim) {
            Some(entry) if !entry.is_empty() => entries.push(entry.to_owned()),
            _ => {
                return Extensions::Invalid(format!(
                    "package.json `openclaw.extensions[{index}]` must be a non-empty string"
                ));
            }
        }
    }
    if entries.is_empty() {
        Extensions::Invalid("package.json `openclaw.extensions` is empty".into())
    } else {
        Extensions::List(entries)
    }
}

/// OpenClaw's id hint from a package name: unscoped, without a `-provider` or `-plugin`
/// suffix.
pub(crate) fn package_id_hint(name: &str) -> Option<String> {
    let unscoped = name.rsplit('/').next().unwrap_or(name).trim();
    let stripped = ["-provider", "-plugin"]
        .iter()
        .find_map(|suffix| {
            unscoped
                .strip_suffix(suffix)
                .filter(|rest| !rest.is_empty())
        })
        .unwrap_or(unscoped);
    (!stripped.is_empty()).then(|| stripped.to_owned())
}

/// The file name of an entry without its extension (`./src/tools.ts` → `tools`).
pub(crate) fn file_base(entry: &str) -> String {
    let name = Path::new(entry).file_name().map_or_else(
        || entry.to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    match name.rfind('.') {
        Some(dot) if dot > 0 => name[..dot].to_owned(),
        _ => name,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn is_ignored(name: &str) -> bool {
    let name = name.to_lowercase();
    name.is_empty()
        || IGNORED_DIRECTORIES.contains(&name.as_str())
        || Path::new(&name)
            .extension()
            .is_some_and(|extension| extension == "bak")
        || name.contains(".backup-")
        || name.contains(".disabled")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn package_names_give_id_hints_as_in_openclaw() {
        for (name, hint) in [
            ("@openclaw/voice-call", Some("voice-call")),
            ("acme-provider", Some("acme")),
            ("acme-plugin", Some("acme")),
            ("-plugin", Some("-plugin")),
            ("plain", Some("plain")),
        ] {
            assert_eq!(package_id_hint(name).as_deref(), hint, "{name}");
        }
    }

    #[test]
    fn entry_file_bases() {
        for (entry, base) in [
            ("./src/safety.ts", "safety"),
            ("index.js", "index"),
            ("lib/x.test.mjs", "x.test"),
            ("noext", "noext"),
            (".hidden", ".hidden"),
        ] {
            assert_eq!(file_base(entry), base, "{entry}");
        }
    }

    #[test]
    fn extensions_are_read_as_openclaw_reads_them() {
        let cases = [
            (None, Extensions::None),
            (Some(json!(null)), Extensions::None),
            (Some(json!({})), Extensions::None),
            (
                Some(json!([])),
                Extensions::Invalid("package.json `openclaw` must be an object".into()),
            ),
            (
                Some(json!({"extensions": "x.ts"})),
                Extensions::Invalid("package.json `openclaw.extensions` must be an array".into()),
            ),
            (
                Some(json!({"extensions": []})),
                Extensions::Invalid("package.json `openclaw.extensions` is empty".into()),
            ),
            (
                Some(json!({"extensions": ["a.ts", " "]})),
                Extensions::Invalid(
                    "package.json `openclaw.extensions[1]` must be a non-empty string".into(),
                ),
            ),
            (
                Some(json!({"extensions": [" ./a.ts ", "b.ts"]})),
                Extensions::List(vec!["./a.ts".into(), "b.ts".into()]),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(extensions(value.as_ref()), expected, "{value:?}");
        }
    }

    #[test]
    fn ignored_directory_names() {
        for name in [
            "node_modules",
            "Dist",
            "x.bak",
            "a.backup-2024",
            "foo.disabled",
            ".git",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        for name in ["acme", ".hidden-plugin", "building"] {
            assert!(!is_ignored(name), "{name}");
        }
    }
}
