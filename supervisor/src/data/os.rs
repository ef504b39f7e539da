//! Process handling that depends on the operating system. This is the only module with
//! `unsafe` code (one `pre_exec` hook).
//!
//! # Theory of operation
//!
//! Every plugin is spawned **from one dedicated thread** (the spawner) and made the
//! leader of **its own process group**. In the child, between `fork` and `exec`, the
//! hook:
//!
//! 1. asks the kernel to SIGKILL the child when its parent dies
//!    (`PR_SET_PDEATHSIG`), and checks the parent did not die before that took effect;
//! 2. applies resource limits (`RLIMIT_NOFILE`, `RLIMIT_AS`).
//!
//! # Caveats
//!
//! - Linux sends the parent-death signal when the *thread* that forked the child exits,
//!   not the process. Forking from a tokio worker or blocking-pool thread would kill
//!   plugins whenever that thread is retired, so the spawner thread lives as long as
//!   the [`Spawner`] (that is, the supervisor).
//! - The parent-death signal reaches the plugin only, not processes the plugin started
//!   (it is not inherited across `fork`). Those are in the plugin's process group and
//!   are killed with it on every stop the supervisor performs; if the supervisor itself
//!   is killed with SIGKILL, they receive EOF on any inherited pipe but are otherwise on
//!   their own.
//! - `RLIMIT_AS` limits address space, not resident memory: runtimes that reserve large
//!   virtual ranges up front (V8, the JVM, Go) need a generous value.

#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getppid};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// What to run, fully resolved.
#[derive(Debug)]
pub(crate) struct SpawnRequest {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) cwd: PathBuf,
    /// The whole environment: nothing else is inherited.
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) open_files: Option<u64>,
    pub(crate) memory_bytes: Option<u64>,
}

type Job = (SpawnRequest, oneshot::Sender<io::Result<Child>>);

/// Spawns processes from one long-lived thread (see the module's caveats).
#[derive(Debug)]
pub(crate) struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the spawner thread; children are registered with `runtime`'s reactor.
    pub(crate) fn new(runtime: tokio::runtime::Handle) -> io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("outpost-spawner".into())
            .spawn(move || {
                let _context = runtime.enter();
                // Ends when the Spawner (the only sender) is dropped.
                for (request, reply) in rx {
                    let _ = reply.send(spawn(request));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Spawns on the spawner thread.
    pub(crate) async fn spawn(&self, request: SpawnRequest) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((request, reply))
            .map_err(|_| io::Error::other("the spawner thread has stopped"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the spawner thread has stopped"))?
    }
}

fn spawn(request: SpawnRequest) -> io::Result<Child> {
    let limits = Limits::check(request.open_files, request.memory_bytes)?;
    // The child's parent is this process; a different parent after arming the death
    // signal means we died in between.
    let parent = Pid::this();
    let mut command = Command::new(&request.program);
    command
        .args(&request.args)
        .current_dir(&request.cwd)
        .env_clear()
        .envs(request.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe operations are allowed. It makes three system calls (prctl,
    // getppid, setrlimit) through nix wrappers that do not allocate, and builds errors
    // from raw errno values, which does not allocate either.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            if getppid() != parent {
                // The supervisor died before the death signal was armed.
                return Err(io::Error::from(Errno::ESRCH));
            }
            limits.apply().map_err(io::Error::from)
        });
    }
    command.spawn()
}

/// Resource limits, checked in the parent so a bad value is a clear error rather than
/// a failed `exec`.
#[derive(Clone, Copy, Debug)]
struct Limits {
    open_files: Option<u64>,
    memory_bytes: Option<u64>,
}

impl Limits {
    fn check(open_files: Option<u64>, memory_bytes: Option<u64>) -> io::Result<Self> {
        if let Some(wanted) = open_files {
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
            if wanted > hard {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "limits.openFiles is {wanted}, above this system's hard limit of {hard}; lower it"
                    ),
                ));
            }
            if wanted < 8 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "limits.openFiles is {wanted}; a plugin needs at least its three standard streams and a few more (use 8 or more)"
                    ),
                ));
            }
        }
        Ok(Self {
            open_files,
            memory_bytes,
        })
    }

    fn apply(self) -> Result<(), Errno> {
        if let Some(n) = self.open_files {
            setrlimit(Resource::RLIMIT_NOFILE, n, n)?;
        }
        if let Some(bytes) = self.memory_bytes {
            setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
        }
        Ok(())
    }
}

/// A plugin's process group; SIGKILLs it on drop unless told the group is gone.
///
/// Dropping is the last resort (a panic, a supervisor dropped without shutdown): the
/// normal path is the stop escalation, after which [`ProcessGroup::disarm`] is called.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Pid,
    armed: AtomicBool,
}

impl ProcessGroup {
    /// The group led by `pid` (spawned with `process_group(0)`).
    pub(crate) fn new(pid: u32) -> Self {
        Self {
            pgid: Pid::from_raw(i32::try_from(pid).expect("pids fit in i32")),
            armed: AtomicBool::new(true),
        }
    }

    /// Sends `signal` to every process in the group. `false` when the group no longer
    /// exists.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        killpg(self.pgid, signal).is_ok()
    }

    /// Kills what is left of the group (helpers the plugin started) after its leader
    /// was reaped, and stops guarding it.
    ///
    /// Safe against pid reuse: a group id cannot be reused while the group has members,
    /// and this is called right after the leader was reaped.
    pub(crate) fn sweep(&self) {
        self.signal(Signal::SIGKILL);
        self.armed.store(false, Ordering::SeqCst);
    }

    /// The group's id (the leader's pid).
    pub(crate) fn id(&self) -> i32 {
        self.pgid.as_raw()
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.armed.load(Ordering::SeqCst) {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// How a process ended, for people and for `-32010` data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitDescription {
    /// `"exit status 3"`, `"killed by signal 9 (SIGKILL)"`.
    pub text: String,
    /// The exit code, when it exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal, when one ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

impl ExitDescription {
    pub(crate) fn from_status(status: ExitStatus) -> Self {
        if let Some(code) = status.code() {
            return Self {
                text: format!("exit status {code}"),
                exit_code: Some(code),
                signal: None,
            };
        }
        let signal = status.signal().unwrap_or_default();
        let name = Signal::try_from(signal).map_or("unknown signal", Signal::as_str);
        Self {
            text: format!("killed by signal {signal} ({name})"),
            exit_code: None,
            signal: Some(signal),
        }
    }
}

impl std::fmt::Display for ExitDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_for_people() {
        assert_eq!(
            ExitDescription::from_status(ExitStatus::from_raw(3 << 8)).text,
            "exit status 3"
        );
        let killed = ExitDescription::from_status(ExitStatus::from_raw(9));
        assert_eq!(killed.text, "killed by signal 9 (SIGKILL)");
        assert_eq!(killed.signal, Some(9));
    }

    #[test]
    fn impossible_limits_are_refused_before_spawning() {
        let error = Limits::check(Some(u64::MAX), None).unwrap_err();
        assert!(error.to_string().contains("hard limit"), "{error}");
        assert!(
            Limits::check(Some(2), None)
                .unwrap_err()
                .to_string()
                .contains("at least")
        );
    }

    #[tokio::test]
    async fn children_are_group_leaders_with_a_scrubbed_environment() {
        let spawner = Spawner::new(tokio::runtime::Handle::current()).unwrap();
        let child = spawner
            .spawn(SpawnRequest {
                program: "/bin/sh".into(),
                args: vec![
                    "-c".into(),
                    "echo \"$$ $(ps -o pgid= -p $$) ${HOME:-none} ${SECRET:-unset}\"".into(),
                ],
                cwd: std::env::temp_dir(),
                env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
                open_files: Some(64),
                memory_bytes: None,
            })
            .await
            .unwrap();
        let output = child.wait_with_output().await.unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let fields: Vec<_> = text.split_whitespace().collect();
        assert_eq!(
            fields[0], fields[1],
            "the child leads its own group: {text}"
        );
        assert_eq!(
            &fields[2..],
            ["none", "unset"],
            "nothing but PATH was passed: {text}"
        );
    }
}
