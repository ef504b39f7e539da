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
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
