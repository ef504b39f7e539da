//! How to start one plugin: what the control plane decides and the data plane runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::policy::SupervisionPolicy;

/// A plugin's launch, fully resolved and checked by the safety gates.
///
/// Nothing here is interpreted by a shell. The child runs `program` with `args`, in
/// `root`, with an environment built from an allowlist (`PATH`, `HOME`, `LANG`, `LC_*`,
/// `TZ`, `TMPDIR`), the names in `env_passthrough` copied from the supervisor's own
/// environment, the pairs in `env_set`, and the protocol's `OUTPOST_PLUGIN_ID` and
/// `OUTPOST_PROTOCOL`.
///
/// Build one with [`LaunchSpec::new`] and the `with_` methods; the control plane builds
/// them from manifests ([`Inventory::plugin_specs`](crate::control::Inventory::plugin_specs)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LaunchSpec {
    /// The executable, as an absolute path: inside the plugin root, or found on `PATH`
    /// or on the operator's `outpost.binPath`.
    pub program: PathBuf,
    /// Arguments, passed as they are.
    pub args: Vec<String>,
    /// The plugin root: the child's working directory.
    pub root: PathBuf,
    /// Variables copied by name from the supervisor's environment (granted by the
    /// manifest or the operator).
    pub env_passthrough: Vec<String>,
    /// Variables set to fixed values (manifest, then operator).
    pub env_set: BTreeMap<String, String>,
    /// Timeouts, health, restart, stop and limits.
    pub policy: SupervisionPolicy,
    /// What confines the plugin: namespaces, the filesystem sandbox, the user it runs
    /// as (docs/isolation.md).
    pub sandbox: Sandbox,
}

impl LaunchSpec {
    /// Runs `program` (an absolute path: nothing is looked up) in `root`, with no
    /// arguments, no granted environment and the default policy.
    pub fn new(program: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            root: root.into(),
            env_passthrough: Vec::new(),
            env_set: BTreeMap::new(),
            policy: SupervisionPolicy::default(),
            sandbox: Sandbox::default(),
        }
    }

    /// The arguments.
    #[must_use]
    pub fn with_args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the variable `name` to `value` in the plugin's environment.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env_set.insert(name.into(), value.into());
        self
    }

    /// Copies the variable `name` from the supervisor's environment, when it is set.
    #[must_use]
    pub fn with_env_passthrough(mut self, name: impl Into<String>) -> Self {
        self.env_passthrough.push(name.into());
        self
    }

    /// The supervision policy.
    #[must_use]
    pub fn with_policy(mut self, policy: SupervisionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// What confines the plugin.
    #[must_use]
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = sandbox;
        self
    }
}

/// What confines one plugin; docs/isolation.md says what holds on which host.
///
/// The default confines as much as the host allows: the plugin in its own namespaces
/// (so nothing it starts outlives it or the supervisor, and it sees no other process)
/// and in a filesystem sandbox of its root, its runtime and a private state directory.
/// What a plugin really got is its [`Isolation`](crate::Isolation), reported after
/// each start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Sandbox {
    /// Whether to contain the plugin in new PID and mount namespaces (and a user
    /// namespace, when the supervisor is not root), with a private `/proc`. Where the
    /// kernel refuses, or when this is false, the plugin runs in its own process group
    /// as before. Default true.
    pub contain: bool,
    /// The filesystem sandbox (Landlock), or `None` when the operator turned it off.
    /// Default: on, with nothing declared beyond what every plugin gets.
    pub filesystem: Option<FsAccess>,
    /// The user to run the plugin as when the supervisor runs as root (ignored
    /// otherwise). Default: none, so a root supervisor runs plugins as root.
    pub user: Option<RunAs>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            contain: true,
            filesystem: Some(FsAccess::default()),
            user: None,
        }
    }
}

impl Sandbox {
    /// Whether to contain the plugin in its own namespaces (see [`Sandbox::contain`]).
    #[must_use]
    pub fn with_contain(mut self, contain: bool) -> Self {
        self.contain = contain;
        self
    }

    /// The filesystem sandbox; `None` turns it off.
    #[must_use]
    pub fn with_filesystem(mut self, filesystem: Option<FsAccess>) -> Self {
        self.filesystem = filesystem;
        self
    }

    /// The user to run as when the supervisor is root.
    #[must_use]
    pub fn with_user(mut self, user: Option<RunAs>) -> Self {
        self.user = user;
        self
    }
}

/// What a sandboxed plugin may reach beyond its root, its runtime and its state
/// directory (docs/isolation.md lists what every plugin gets).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FsAccess {
    /// Files and directories the plugin may read (and execute), each with everything
    /// beneath it. Each must exist when the plugin starts.
    pub read: Vec<PathBuf>,
    /// Files and directories the plugin may read, write, create in and delete from.
    /// Each must exist when the plugin starts.
    pub write: Vec<PathBuf>,
    /// The plugin's private writable directory, passed to it as `OUTPOST_STATE_DIR`
    /// and `TMPDIR`; created (mode 0700, owned by the plugin's user) when missing.
    /// Default: `<temp dir>/outpost-<uid>/<plugin id>`.
    pub state_dir: Option<PathBuf>,
}

impl FsAccess {
    /// Lets the plugin read `path` and everything beneath it.
    #[must_use]
    pub fn with_read(mut self, path: impl Into<PathBuf>) -> Self {
        self.read.push(path.into());
        self
    }

    /// Lets the plugin write `path` and everything beneath it.
    #[must_use]
    pub fn with_write(mut self, path: impl Into<PathBuf>) -> Self {
        self.write.push(path.into());
        self
    }

    /// The plugin's state directory.
    #[must_use]
    pub fn with_state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(path.into());
        self
    }
}

/// An unprivileged user to run a plugin as, when the supervisor runs as root.
///
/// The plugin gets exactly this uid and gid, with no supplementary groups; its root
/// must be readable by that user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
    /// The user's name, for reports (`nobody`, `outpost-plugins`).
    pub name: String,
}

impl RunAs {
    /// Runs as `uid`:`gid`, reported as `name`.
    pub fn new(uid: u32, gid: u32, name: impl Into<String>) -> Self {
        Self {
            uid,
            gid,
            name: name.into(),
        }
    }
}
