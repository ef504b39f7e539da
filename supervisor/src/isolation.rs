//! How far plugins are confined: what this host offers ([`probe`]) and what each
//! plugin got ([`Isolation`]).
//!
//! A plugin's [`Sandbox`](crate::Sandbox) says what the operator wants; the kernel
//! decides what is possible. Nothing here fails a start for want of a kernel feature:
//! a plugin runs with what the host offers, and its [`Isolation`] says what that was,
//! so `outpost plugins doctor` and `inspect` can say it too. docs/isolation.md
//! describes what holds where.
//!
//! ```
//! let host = outpost_supervisor::isolation::probe();
//! println!(
//!     "containment: {:?}, filesystem sandbox: {:?}",
//!     host.containment, host.filesystem
//! );
//! ```

use std::path::PathBuf;

use serde::Serialize;

/// What this host offers plugins; the same for every plugin, probed once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HostIsolation {
    /// Whether the supervisor runs as root (then plugins run as root too unless their
    /// sandbox names a user).
    pub running_as_root: bool,
    /// New PID, mount and IPC namespaces per plugin (and a user namespace, when not root).
    pub namespaces: Support,
    /// A private `/proc` in each plugin's namespaces, showing its own processes only.
    pub private_proc: Support,
    /// What a plugin is contained in by default.
    pub containment: Containment,
    /// The kernel's Landlock ABI version, when it has Landlock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landlock_abi: Option<u32>,
    /// What the filesystem sandbox is by default: enforced, partial or unavailable.
    pub filesystem: FilesystemSandbox,
    /// Why the filesystem sandbox is partial or unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem_detail: Option<String>,
}

/// Whether one kernel feature can be used, and why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Support {
    /// Whether it works here.
    pub available: bool,
    /// Why it does not (the step that failed and the kernel's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Support {
    pub(crate) fn yes() -> Self {
        Self {
            available: true,
            reason: None,
        }
    }

    pub(crate) fn no(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            reason: Some(reason.into()),
        }
    }
}

/// What keeps a plugin's processes from outliving it and the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Containment {
    /// Its own PID namespace: everything the plugin starts dies with it, and with the
    /// supervisor, whatever it does (`setsid`, double forks).
    Namespaces,
    /// Its own process group only: a process that leaves the group (`setsid`) can
    /// outlive the plugin.
    ProcessGroup,
}

/// The state of a plugin's filesystem sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum FilesystemSandbox {
    /// Every access right is restricted.
    Enforced,
    /// Restricted, but the kernel's Landlock ABI lacks some rights (for example
    /// truncation, before ABI 3), which are then not restricted.
    Partial,
    /// The kernel has no Landlock: nothing is restricted.
    Unavailable,
    /// The operator turned the sandbox off for this plugin.
    Off,
}

/// How one incarnation of a plugin is confined, decided at its start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Isolation {
    /// Namespaces, or only a process group.
    pub containment: Containment,
    /// The filesystem sandbox.
    pub filesystem: FilesystemSandbox,
    /// The user it runs as, when the supervisor is root: the configured user, or
    /// `root` when none is configured. `None` when the supervisor is not root (the
    /// plugin runs as the supervisor's user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its private writable directory (`OUTPOST_STATE_DIR`, `TMPDIR`).
    pub state_dir: PathBuf,
    /// Why something is weaker than asked for, in sentences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What this host offers plugins. Probed on the first call (a few milliseconds: a
/// short-lived process tries the namespaces), then cached.
pub fn probe() -> HostIsolation {
    crate::data::probe_host().clone()
}

/// How a plugin will be confined on this host, from its sandbox and what the host
/// offers: what `outpost plugins inspect` shows before the plugin runs. The
/// [`Isolation`] reported at its start is the word that counts (a Landlock ruleset can
/// still be refused then, for a declared path that does not exist).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PlannedIsolation {
    /// Namespaces when asked for and offered, else a process group.
    pub containment: Containment,
    /// `off` when the sandbox turns it off, else what the host offers.
    pub filesystem: FilesystemSandbox,
    /// The user it will run as, when the supervisor runs as root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl PlannedIsolation {
    /// What `sandbox` comes to on `host`.
    pub fn new(sandbox: &crate::Sandbox, host: &HostIsolation) -> Self {
        Self {
            containment: if sandbox.contain && host.namespaces.available {
                Containment::Namespaces
            } else {
                Containment::ProcessGroup
            },
            filesystem: if sandbox.filesystem.is_some() {
                host.filesystem
            } else {
                FilesystemSandbox::Off
            },
            user: host.running_as_root.then(|| {
                sandbox
                    .user
                    .as_ref()
                    .map_or_else(|| "root".to_owned(), |user| user.name.clone())
            }),
        }
    }
}
