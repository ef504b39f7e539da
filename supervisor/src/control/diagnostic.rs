//! Diagnostics: every problem the control plane finds, with where it is and what it is.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How much a diagnostic matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is wrong and needs action: `validate` and `doctor` exit 1.
    Error,
    /// Probably not what the operator meant, but nothing is broken (a stale config entry,
    /// a disabled plugin that still has config, a shadowed copy).
    Warning,
    /// Worth knowing: a compatibility note or a hardening suggestion.
    Advisory,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Advisory => "advisory",
        })
    }
}

/// What kind of problem a diagnostic reports. Serialized in kebab-case; the values are
/// part of the documented JSON output (docs/operators.md) and never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The config file cannot be read or parsed.
    ConfigUnreadable,
    /// A key the config file or a manifest's `outpost` block does not know.
    UnknownKey,
    /// A value of the wrong type or out of range.
    InvalidValue,
    /// A manifest asks for a variable of the supervisor's environment the operator has
    /// not granted: it is not passed.
    EnvNotGranted,
    /// A manifest asks to reach a path outside its root that the operator has not
    /// granted in `outpost.plugins.<id>.sandbox`: the sandbox does not open it.
    FsNotGranted,
    /// The host confines plugins less than their sandbox asks: no namespaces, no
    /// Landlock, or plugins running as root.
    Isolation,
    /// A config entry that names the same plugin (or channel) as another one after
    /// normalisation.
    DuplicateEntry,
    /// Top-level config keys other than `plugins`, `channels` and `outpost`, ignored.
    IgnoredKey,
    /// A `plugins.load.paths` entry or a discovery root that cannot be used.
    PathUnusable,
    /// Config refers to a plugin id that discovery did not find.
    UnknownPlugin,
    /// A lower-precedence copy of a plugin id, ignored.
    Shadowed,
    /// A plugin whose id differs only in case from one found earlier: refused, since
    /// config entries, grants and allowlists match ids case-insensitively.
    IdCaseCollision,
    /// A safety gate refused a file or directory that resolves outside the plugin root.
    EscapesRoot,
    /// A safety gate refused a world-writable file or directory.
    WorldWritable,
    /// A safety gate refused a path owned by neither the current user nor root.
    SuspiciousOwner,
    /// A safety gate refused a hardlinked file.
    Hardlinked,
    /// A path the gates could not inspect.
    Uninspectable,
    /// The plugin root has no manifest.
    ManifestMissing,
    /// The manifest could not be read, parsed or accepted.
    ManifestInvalid,
    /// `package.json` `openclaw.extensions` is malformed or its entries collide.
    PackInvalid,
    /// A pack entry file does not exist.
    EntryMissing,
    /// The manifest's `outpost` block is malformed.
    LaunchSpecInvalid,
    /// The launch command or entry cannot be found or executed.
    CommandUnavailable,
    /// A supervision policy layer is malformed.
    PolicyInvalid,
    /// The manifest's `configSchema` is not a usable JSON Schema.
    SchemaInvalid,
    /// The plugin's config does not match its `configSchema`.
    ConfigInvalid,
    /// A disabled plugin still has config (kept, so re-enabling it is not destructive).
    DisabledWithConfig,
    /// A plugin lost an exclusive slot, or a slot selects something odd.
    Slot,
    /// A plugin the manifest requires was not discovered.
    RequirementMissing,
    /// An enabled plugin cannot run out of process.
    NotRunnable,
    /// Non-bundled plugins are discoverable and `plugins.allow` is empty.
    NoAllowlist,
    /// A manifest field OpenClaw ignores (an unknown `contracts` key, for example).
    IgnoredManifestField,
    /// A `channels.<id>` key no discovered manifest declares.
    UnknownChannel,
    /// A second plugin declares a channel another plugin, first in precedence, owns: it
    /// does not receive that channel's config.
    ChannelTaken,
    /// A `channels.<id>` config that does not match the schema its plugin's manifest
    /// declares in `channelConfigs`.
    ChannelConfigInvalid,
    /// A workspace copy that is not enabled, passed over: it shadows nothing.
    PassedOver,
    /// A config entry that names a plugin by a legacy id (`legacyPluginIds`).
    LegacyId,
}

/// One problem, with where it is: the plugin, the file, the JSON path inside the file,
/// and the offending key.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// How much it matters.
    pub severity: Severity,
    /// What kind of problem.
    pub code: Code,
    /// The plugin concerned, if any.
    pub plugin: Option<String>,
    /// The file the problem is in, or the path a gate refused.
    pub file: Option<PathBuf>,
    /// The JSON path inside `file` (`plugins.entries.acme.config.region`), if any.
    pub path: Option<String>,
    /// The offending key, if any.
    pub key: Option<String>,
    /// What happened and what to do.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(severity: Severity, code: Code, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            plugin: None,
            file: None,
            path: None,
            key: None,
            message: message.into(),
        }
    }

    pub(crate) fn error(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    pub(crate) fn warning(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    pub(crate) fn advisory(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Advisory, code, message)
    }

    pub(crate) fn plugin(mut self, id: impl Into<String>) -> Self {
        self.plugin = Some(id.into());
        self
    }

    pub(crate) fn file(mut self, file: impl AsRef<Path>) -> Self {
        self.file = Some(file.as_ref().to_path_buf());
        self
    }

    pub(crate) fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub(crate) fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The key of a JSON path's last segment: `b` for `a.b`, `b` for `a.b[0]`.
    pub(crate) fn path_and_key(self, path: &str) -> Self {
        let key = last_key(path);
        let this = self.path(path);
        match key {
            Some(key) => this.key(key),
            None => this,
        }
    }
}

/// `severity: file: path: message`, the one-line form the CLI prints.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn last_key(path: &str) -> Option<String> {
    let mut trimmed = path;
    while let Some(open) = trimmed.strip_suffix(']').and_then(|rest| rest.rfind('[')) {
        trimmed = &trimmed[..open];
    }
    trimmed
        .rsplit('.')
        .next()
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
}

/// Appends `key` to a dotted JSON path.
pub(crate) fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// Appends `[index]` to a dotted JSON path.
pub(crate) fn index_path(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_last_object_segment() {
        for (path, key) in [
            ("plugins.entries.acme.config.region", Some("region")),
            ("plugins.load.paths[2]", Some("paths")),
            ("outpost", Some("outpost")),
            ("a.b[0][1]", Some("b")),
            ("", None),
        ] {
            assert_eq!(last_key(path).as_deref(), key, "{path}");
        }
    }
}
