//! Starting a plugin the way the host does (docs/protocol.md §3), and making sure it
//! stops.
//!
//! # Theory of operation
//!
//! A plugin is started without a shell, in its root directory, with a scrubbed
//! environment, as the leader of its own process group. One task waits for it and
//! publishes its exit status; a [`GroupGuard`] owned by the [`PluginProcess`] sends
//! SIGKILL to the whole group when it is dropped, so every way out of the suite (a
//! finished check, an early return, a panic, Ctrl-C in the binary) stops the plugin
//! and whatever it started in its group.
//!
//! # Caveats
//!
//! - The suite does not set `PR_SET_PDEATHSIG` (that needs `unsafe` code between fork
//!   and exec). If the suite itself is killed with SIGKILL, its plugins see stdin EOF,
//!   which a conforming plugin obeys.
//! - A process that leaves the group (`setsid`, double fork into a new group) escapes
//!   the guard, as it would escape the host; the suite cannot see it either.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

/// Variables copied from the suite's own environment, as the host copies them (§3.2).
const ALLOWED_ENV: &[&str] = &["PATH", "HOME", "LANG", "TZ", "TMPDIR"];

/// What to run, resolved: no shell interprets any of it.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) cwd: PathBuf,
    /// The whole environment except `OUTPOST_PLUGIN_ID`, which is set per spawn.
    pub(crate) env: Vec<(OsString, OsString)>,
}

impl Launch {
    /// The command line, for reports.
    pub(crate) fn command_line(&self) -> Vec<String> {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// Why a plugin's program could not be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A command with a `/` that does not name a file.
    #[error("the plugin command `{command}` does not exist (looked for {path})")]
    Missing {
        /// The command as written.
        command: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A bare name found nowhere.
    #[error(
        "the plugin command `{command}` was not found in {searched}; install it, build it, or pass --bin-path DIR"
    )]
    NotOnPath {
        /// The command as written.
        command: String,
        /// The directories searched, for the message.
        searched: String,
    },
}

/// Finds the program of a plugin the way the host does: a name containing `/` is a path
/// relative to `base` (the plugin root, or the current directory for `run -- CMD`); a
/// bare name is looked up in `bin_path`, then on `PATH`.
pub(crate) fn resolve_program(
    command: &str,
    base: &Path,
    bin_path: &[PathBuf],
) -> Result<PathBuf, ResolveError> {
    if command.contains('/') {
        let path = base.join(command);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ResolveError::Missing {
                command: command.to_owned(),
                path,
            })
        };
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in bin_path.iter().chain(&path_dirs) {
        let candidate = dir.join(command);
        let executable = std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable {
            return Ok(candidate);
        }
    }
    let searched = if bin_path.is_empty() {
        "PATH".to_owned()
    } else {
        let dirs: Vec<String> = bin_path.iter().map(|d| d.display().to_string()).collect();
        format!("--bin-path ({}) and PATH", dirs.join(", "))
    };
    Err(ResolveError::NotOnPath {
        command: command.to_owned(),
        searched,
    })
}

/// The scrubbed environment of §3.2, minus `OUTPOST_PLUGIN_ID`.
pub(crate) fn plugin_env(
    passthrough: &[String],
    set: &BTreeMap<String, String>,
) -> Vec<(OsString, OsString)> {
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os()
        .filter(|(name, _)| {
            name.to_str()
                .is_some_and(|name| ALLOWED_ENV.contains(&name) || name.starts_with("LC_"))
        })
        .collect();
    for name in passthrough {
        if let Some(value) = std::env::var_os(name) {
            env.insert(name.into(), value);
        }
    }
    for (name, value) in set {
        env.insert(name.into(), value.into());
    }
    env.insert(
        outpost_protocol::ENV_PROTOCOL.into(),
        outpost_protocol::PROTOCOL_VERSION.into(),
    );
    env.into_iter().collect()
}

/// A running plugin and its pipes.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) process: PluginProcess,
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: ChildStderr,
}

/// A plugin process: its group, its exit status when known, and the guard that kills
/// the group.
#[derive(Debug)]
pub(crate) struct PluginProcess {
    pid: i32,
    exit: watch::Receiver<Option<ExitStatus>>,
    guard: GroupGuard,
}

/// Kills the whole process group when dropped.
#[derive(Debug)]
struct GroupGuard {
    pgid: Pid,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // ESRCH (nothing left) is the usual, happy case.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

impl PluginProcess {
    /// Starts `launch` as the leader of a new process group.
    pub(crate) fn spawn(launch: &Launch, plugin_id: &str) -> io::Result<Spawned> {
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .current_dir(&launch.cwd)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .env(outpost_protocol::ENV_PLUGIN_ID, plugin_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| io::Error::other("the plugin exited before its pid could be read"))?;
        let guard = GroupGuard {
            pgid: Pid::from_raw(pid),
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other("the plugin's pipes were not created"));
        };
        let (tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = tx.send(Some(status));
            }
        });
        Ok(Spawned {
            process: Self { pid, exit, guard },
            stdin,
            stdout,
            stderr,
        })
    }

    /// The plugin's pid, which is also its process group id.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// The exit status, if the plugin has exited and been reaped.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits up to `timeout` for the plugin to exit.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        let waited = tokio::time::timeout(timeout, exit.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(status)) => *status,
            _ => self.exit_status(),
        }
    }

    /// Sends `signal` to the plugin's whole process group.
    pub(crate) fn signal_group(&self, signal: Signal) {
        let _ = killpg(self.guard.pgid, signal);
    }

    /// The processes still in the plugin's process group (not counting zombies).
    pub(crate) fn group_members(&self) -> Vec<GroupMember> {
        group_members(self.pid)
    }
}

/// A process found in a plugin's process group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupMember {
    pub(crate) pid: i32,
    pub(crate) command: String,
}

#[cfg(target_os = "linux")]
fn group_members(pgid: i32) -> Vec<GroupMember> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may contain spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        if pgrp != Some(pgid) || state == Some("Z") {
            continue;
        }
        let command = std::fs::read(entry.path().join("cmdline"))
            .map(|raw| {
                raw.split(|&b| b == 0)
                    .filter(|part| !part.is_empty())
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        members.push(GroupMember { pid, command });
    }
    members.sort_by_key(|m| m.pid);
    members
}

#[cfg(not(target_os = "linux"))]
fn group_members(pgid: i32) -> Vec<GroupMember> {
    // Without /proc, a null signal only tells whether anything is left.
    match killpg(Pid::from_raw(pgid), None) {
        Ok(()) => vec![GroupMember {
            pid: pgid,
            command: "(unknown: process listing needs Linux)".to_owned(),
        }],
        Err(_) => Vec::new(),
    }
}

/// "status 0", "status 78", "signal 9 (SIGKILL)".
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("status {code}")
    } else if let Some(signal) = status.signal() {
        match Signal::try_from(signal) {
            Ok(name) => format!("signal {signal} ({name})"),
            Err(_) => format!("signal {signal}"),
        }
    } else {
        "an unknown status".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_base_and_bare_names_use_bin_path_first() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("my-plugin");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();

        assert_eq!(
            resolve_program("bin/my-plugin", dir.path(), &[]).unwrap(),
            dir.path().join("bin/my-plugin")
        );
        assert_eq!(
            resolve_program("my-plugin", dir.path(), std::slice::from_ref(&bin)).unwrap(),
            tool
        );
        let missing = resolve_program("bin/nope", dir.path(), &[]).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        let absent = resolve_program("outpost-no-such-program", dir.path(), &[bin]).unwrap_err();
        assert!(absent.to_string().contains("--bin-path"), "{absent}");
        assert!(resolve_program("sh", dir.path(), &[]).is_ok());
    }

    #[test]
    fn the_environment_is_scrubbed_and_granted() {
        let set = BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]);
        let env = plugin_env(&["PATH".to_owned()], &set);
        let names: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert!(names.contains(&"OUTPOST_PROTOCOL"));
        assert!(names.contains(&"GREETING"));
        for name in &names {
            assert!(
                ALLOWED_ENV.contains(name)
                    || name.starts_with("LC_")
                    || ["OUTPOST_PROTOCOL", "GREETING"].contains(name),
                "{name} leaked into the plugin's environment"
            );
        }
    }

    #[test]
    fn exits_are_described_for_people() {
        assert_eq!(describe_exit(ExitStatus::from_raw(0)), "status 0");
        assert_eq!(describe_exit(ExitStatus::from_raw(78 << 8)), "status 78");
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "signal 9 (SIGKILL)");
    }
}
