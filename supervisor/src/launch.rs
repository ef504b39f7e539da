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
}
