//! Process handling that depends on the operating system: spawning a plugin, confined
//! as far as the host allows, and its process group. This is the only module with
//! `unsafe` code.
//!
//! # Theory of operation
//!
//! Every plugin is spawned **from one dedicated thread** (the spawner). Where the
//! kernel allows it (probed once: [`probe`]), the plugin is **contained** in new PID,
//! mount and IPC namespaces, and a new user namespace when the supervisor is not root (its uid
//! and gid mapped to themselves, `setgroups` denied):
//!
//! ```text
//!   supervisor ─ spawner thread
//!     └─ C   session and group leader, in the host's PID namespace; PDEATHSIG from the spawner
//!          └─ I   PID 1 of the new namespace (its init); PDEATHSIG from C
//!               └─ G   the plugin (PID 2), leader of its own process group
//!                    └─ whatever the plugin starts, daemons included
//! ```
//!
//! - **C** (the child `Command` forks) unshares the namespaces, writes the maps, makes
//!   every mount private, starts I, and waits. Once I says the plugin runs, C unmaps
//!   its copies of the supervisor's anonymous memory (heap, other threads' stacks and
//!   allocations: neither C nor I needs them any more), closes every descriptor it
//!   inherited (other plugins' pipes among them) and waits for the plugin's wait
//!   status, then ends **the same way**: the same exit code, or death by
//!   the same signal (core dumps off), so [`ExitDescription`] stays exact. C is what
//!   the supervisor reaps and signals.
//! - **I** mounts a private `/proc` for the namespace (so the plugin sees its own
//!   processes only, not the supervisor's nor other plugins'), starts G, closes every
//!   other descriptor, blocks every signal and then reaps whatever ends (orphans are
//!   reparented to it), forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
//!   to G's process group, and when G ends sends G's wait status to C and exits. The
//!   init's exit makes **the kernel kill every process left in the namespace**.
//! - **G** makes itself leader of a new process group, restores the signal mask (and
//!   the default action of every handled signal), then takes what every plugin gets in
//!   both modes (below) and executes the plugin's program itself, with the arguments
//!   and environment `Command` would have used, prepared before the fork.
//!
//! Only C is a copy of the supervisor (a `fork`, whose cost grows with the
//! supervisor's memory: its page tables are copied, and every page the supervisor
//! writes while C still maps it is copied; hence C's early unmapping). I shares C's memory (`clone` with `CLONE_VM`, on a stack of its own) and
//! G shares I's until its `exec`, I waiting meanwhile (`CLONE_VFORK`, as `posix_spawn`
//! does): no copy is made for either. C and I run side by side in that memory, each on
//! its own stack, writing nothing of the other's. They share one `errno` (the copy of
//! the spawner thread's): each reads it only right after one of its own system calls
//! failed, and once I runs, C's only such reads follow a pipe read or a `waitpid` with
//! every signal blocked, which do not fail in practice.
//!
//! **A container made ahead** ([`Ahead`]): C's `fork` and the namespaces are most of a
//! contained start's cost, and none of it depends on the plugin. So once the spawner
//! thread has had nothing to do for [`AHEAD_AFTER`] after a contained start, it makes
//! C and I for the next one: I mounts `/proc`, closes every descriptor but the future
//! plugin's streams, its pipe to C and a socket to the supervisor, unmaps the
//! supervisor's anonymous memory for both (C closes its descriptors and waits), and
//! waits on the socket. The next contained start writes its plan (a [`ProcessPlan`],
//! the program, arguments, environment and working directory) into a memory region
//! mapped shared before C's fork, at the same address in every process, and sends one
//! byte with the Landlock ruleset's descriptor attached; I starts G, which reads the
//! plan there, and reports on the socket as it does to C. Everything after is as above.
//!
//! Why three processes: the init of a PID namespace must be a process of the new
//! namespace, and the supervisor needs a child in its own namespace to signal, to reap
//! and to read an exact exit status from. A subreaper "shepherd" alone would not see
//! a daemon that double-forks out of its reach once the supervisor is SIGKILLed; a
//! cgroup needs delegation, which unprivileged supervisors rarely have.
//!
//! **The pid the supervisor reports** (snapshots, resource sampling) is G's pid in the
//! supervisor's namespace, found through `/proc/<C>/task/<C>/children` and
//! `/proc/<I>/...`'s `NSpid` line: the plugin's own process, whose descendants are the
//! plugin's helpers, not a copy of the supervisor's memory.
//!
//! What holds, whatever the plugin does:
//!
//! - the supervisor dies (SIGKILL included): C gets SIGKILL (parent-death signal from
//!   the spawner thread), I gets SIGKILL from C's death, the namespace dies with I;
//! - the stop escalation: SIGTERM to C's group reaches I, which forwards it to G's
//!   group; SIGKILL to C's group kills C and I (a signal from an ancestor namespace
//!   reaches a namespace's init), and so the namespace;
//! - the plugin cannot address C at all (it has no pid in the plugin's namespace and
//!   is not in its group) and cannot kill I (the kernel drops SIGKILL and SIGSTOP
//!   sent to a namespace's init from inside; other signals are blocked and only
//!   forwarded back to the plugin's group); C and I are not dumpable, so the plugin
//!   cannot ptrace them either (nor, under Landlock, any process outside its sandbox).
//!
//! Where the namespaces are unavailable, or the plugin's sandbox turns containment
//! off, the plugin is G itself: the direct child, leader of its own session and process group, as
//! before containment existed; its [`Isolation`] says `processGroup` and why. It is
//! started the way `posix_spawn` starts a program: sharing the supervisor's memory until
//! its `exec`, the spawner thread waiting meanwhile (`CLONE_VM | CLONE_VFORK`), so no
//! copy of the supervisor is made (nor torn down at the `exec`); it does what `Command`
//! would in its child (standard streams, working directory, a session and process group, signal mask
//! and default actions) and is waited for through a process descriptor (`pidfd`,
//! Linux 5.4). Where those are missing, `Command` forks it, as it forks C.
//!
//! In both modes, the plugin's process, just before `exec`:
//!
//! 1. switches to the configured user when the supervisor is root (`setgroups`,
//!    `setgid`, `setuid`, in that order, with raw system calls: glibc's wrappers would
//!    try to reach the supervisor's other threads);
//! 2. asks the kernel to SIGKILL it when its parent dies (`PR_SET_PDEATHSIG`; after the
//!    user switch, which clears it), and checks the parent did not die before;
//! 3. applies resource limits (`RLIMIT_NOFILE`, `RLIMIT_AS`);
//! 4. marks every descriptor but the standard streams close-on-exec;
//! 5. enforces its Landlock ruleset ([`fs_sandbox`]), built in the supervisor.
//!
//! # Caveats
//!
//! - Between `fork` (or `clone`) and `exec` in a multi-threaded process, only
//!   async-signal-safe calls are allowed: every string, path and map is computed before,
//!   and the child code uses system calls only. A child sharing the supervisor's memory
//!   also writes nothing of it but its own stack and its failure's errno.
//! - Linux sends the parent-death signal when the *thread* that forked the child exits,
//!   not the process. Forking from a tokio worker or blocking-pool thread would kill
//!   plugins whenever that thread is retired, so the spawner thread lives as long as
//!   the [`Spawner`] (that is, the supervisor).
//! - Without namespaces, the parent-death signal reaches the plugin only, not the
//!   processes it started: those in its process group are killed with it on every
//!   stop the supervisor performs, but one that left the group (`setsid`) survives it,
//!   and after a SIGKILL of the supervisor all of them do.
//! - C and I are not dumpable (they hold a copy of the supervisor's memory until the
//!   plugin runs, and of its program's writable data after; being one address space,
//!   they are dumpable or not together), except
//!   while C writes its own user namespace's maps: the kernel lets only a dumpable
//!   process open those files. A process of the supervisor's user that opens C's
//!   `/proc/<pid>/environ` within those microseconds could read it later; plugins
//!   cannot (they cannot name C), and an unconfined process of that user can read the
//!   supervisor's config file anyway.
//! - The plugin's pid is found through `/proc/<pid>/task/<pid>/children`
//!   (`CONFIG_PROC_CHILDREN`, on in the common distributions' kernels); without it, or
//!   when the plugin has already exited, C's pid is reported instead.
//! - Each contained plugin costs two more small processes (C, a copy-on-write fork of
//!   the supervisor sharing its pages, and I, sharing C's memory) and a user namespace
//!   when the supervisor is not root (`user.max_user_namespaces`); the container made
//!   ahead, one more of each while it waits.
//! - `RLIMIT_AS` limits address space, not resident memory: runtimes that reserve large
//!   virtual ranges up front (V8, the JVM, Go) need a generous value.

#![allow(unsafe_code)]

mod child;
mod contain;
mod fs_sandbox;

pub(crate) use fs_sandbox::path_component as state_dir_name;
mod probe;

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{PoisonError, mpsc};
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getppid};
use tokio::process::Command;
use tokio::sync::oneshot;

pub(crate) use child::Child;
pub(crate) use probe::host as probe_host;

use self::contain::Namespaces;
use self::fs_sandbox::{Reach, Rule};
use crate::isolation::{Containment, FilesystemSandbox, HostIsolation, Isolation};
use crate::launch::Sandbox;

/// The `tracing` target of the trace events that mark the steps from a plugin's
/// start to its readiness (`step` names the step just done; the bench's `--steps`
/// times them).
pub(crate) const STEPS: &str = "outpost::spawn";

/// The variable that tells a plugin its private writable directory (also its
/// `TMPDIR`).
pub(crate) const ENV_STATE_DIR: &str = "OUTPOST_STATE_DIR";

/// What to run, fully resolved.
#[derive(Debug)]
pub(crate) struct SpawnRequest {
    /// The plugin id (names its default state directory).
    pub(crate) plugin: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) cwd: PathBuf,
    /// The whole environment: nothing else is inherited. `OUTPOST_STATE_DIR` and
    /// `TMPDIR` are set on top.
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) open_files: Option<u64>,
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) sandbox: Sandbox,
}

/// A started plugin.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// The process the supervisor reaps and signals: the plugin itself, or C when it
    /// is contained. It leads the process group.
    pub(crate) child: Child,
    /// The plugin's own process, in the supervisor's PID namespace.
    pub(crate) pid: u32,
    /// How it is confined.
    pub(crate) isolation: Isolation,
    /// Whether it was started in a container made ahead ([`Ahead`]).
    pub(crate) made_ahead: bool,
}

type Job = (SpawnRequest, oneshot::Sender<io::Result<Spawned>>);

/// How long the spawner thread waits, idle after a contained start, before it makes a
/// container ahead for the next one ([`Ahead`]): long enough that a burst of starts
/// (a supervisor's own start, a reload, a storm of restarts) is not slowed by it, and
/// that the plugin just started has done its handshake.
pub(crate) const AHEAD_AFTER: Duration = Duration::from_millis(10);

/// How often an idle container made ahead is checked against the supervisor's
/// current state ([`Inherited`], the mounts), and made again when it differs: so that
/// it does not keep an unmounted filesystem busy, nor wait with stale limits.
const AHEAD_CHECK: Duration = Duration::from_secs(1);

/// Held while a C is forked, and while a container made ahead is made: see
/// [`Ahead::make`].
static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long the supervisor waits for a container made ahead to report a start: a
/// container stopped (SIGSTOP, a freezer) must not hold the spawner thread, and with
/// it every start.
const AHEAD_REPORT: Duration = Duration::from_secs(5);

/// Spawns processes from one long-lived thread (see the module's caveats).
#[derive(Debug)]
pub(crate) struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the spawner thread; children are registered with `runtime`'s reactor.
    /// With `ahead`, once the thread has been idle that long after a contained start
    /// (at once for zero), it makes a container for the next one ([`Ahead`]).
    pub(crate) fn new(
        runtime: tokio::runtime::Handle,
        ahead: Option<Duration>,
    ) -> io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("outpost-spawner".into())
            .spawn(move || {
                let _context = runtime.enter();
                let mut warm = Warm::default();
                // Ends when the Spawner (the only sender) is dropped; `warm`'s container,
                // if any, with it.
                loop {
                    // How long to wait for a job before the container needs a look: a
                    // check of the one waiting, or one made.
                    let idle = match ahead {
                        Some(_) if warm.ready.is_some() => Some(AHEAD_CHECK),
                        Some(after) if warm.wanted => Some(after),
                        _ => None,
                    };
                    let job = match idle {
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                        Some(wait) if wait.is_zero() => Err(mpsc::RecvTimeoutError::Timeout),
                        Some(wait) => rx.recv_timeout(wait),
                    };
                    match job {
                        Ok((request, reply)) => {
                            if let Err(Ok(unwanted)) = reply.send(spawn(request, &mut warm)) {
                                // Its caller went away meanwhile (a runner dropped
                                // with its supervisor): nobody would supervise it, so
                                // it is killed with its group at once, and reaped.
                                tracing::debug!(
                                    pid = unwanted.pid,
                                    "a start nobody waits for any more: killed"
                                );
                                drop(ProcessGroup::new(unwanted.child.id()));
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => warm.refresh(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Spawns on the spawner thread. Dropped before its answer, the future leaves no
    /// process behind: a plugin started meanwhile is killed with its group.
    pub(crate) async fn spawn(&self, request: SpawnRequest) -> io::Result<Spawned> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((request, reply))
            .map_err(|_| io::Error::other("the spawner thread has stopped"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the spawner thread has stopped"))?
    }
}

/// The spawner thread's container made ahead, and whether one is wanted.
#[derive(Debug, Default)]
struct Warm {
    ready: Option<Ahead>,
    /// A contained plugin was started since the last container made ahead failed (or
    /// ever): the next start is likely contained too.
    wanted: bool,
}

impl Warm {
    /// The container made ahead, if there is one and it is still current.
    fn take(&mut self) -> Option<Ahead> {
        self.check();
        self.ready.take()
    }

    /// Checks the container made ahead, or makes one.
    fn refresh(&mut self) {
        if self.ready.is_some() {
            self.check();
        } else {
            self.make();
        }
    }

    /// Drops the container made ahead when the supervisor's state changed since (it is
    /// made again once the thread is idle).
    fn check(&mut self) {
        if let Some(ahead) = &self.ready
            && !ahead.current()
        {
            tracing::debug!("the container made ahead is stale: made again");
            self.ready = None;
        }
    }

    fn make(&mut self) {
        match Ahead::make() {
            Ok(ahead) => self.ready = Some(ahead),
            Err(error) => {
                // Not an error of any plugin's: the next contained start goes the
                // usual way, and tells whatever is wrong.
                tracing::debug!("no container made ahead: {error}");
                self.wanted = false;
            }
        }
    }
}

/// A container made ahead of the plugin it will hold: C and the init started, the
/// namespaces made, a private `/proc` mounted, the plugin's standard streams ready,
/// and the init waiting for a plan. A contained start then costs only the plugin's own
/// process: the supervisor writes the plan into a memory region shared with the init
/// ([`Region`]: the arguments, environment and working directory, the user, limits
/// and the rest of [`ProcessPlan`]), and sends the word to start on a socket with
/// the Landlock ruleset's descriptor attached; the init starts the plugin's process as
/// it would have, and reports on the same socket.
///
/// While it waits, C and the init hold nothing of the supervisor's: no descriptor (so
/// no other plugin's pipe) and no anonymous memory, as a contained plugin's C after
/// its start. Dropped unused, it is killed: C by SIGKILL, the init by its parent's
/// death, the namespace with the init. C dies with the spawner thread, as every C
/// does.
///
/// C is a copy of the supervisor as it was when the container was made: its mounts
/// (C's mount namespace is a copy of the supervisor's), limits, cgroup, credentials
/// and namespaces. A start uses it only while they are still the same
/// ([`Ahead::current`]); else it is dropped, and the plugin started the usual way.
#[derive(Debug)]
struct Ahead {
    /// C, with the plugin's standard streams; `None` once handed over.
    child: Option<tokio::process::Child>,
    /// The supervisor's end of the socket to the init.
    socket: std::os::unix::net::UnixStream,
    region: Region,
    /// What C inherited.
    made_with: Inherited,
    /// The spawner thread's `/proc/thread-self`, to read what it has now.
    thread: std::os::fd::OwnedFd,
    /// The spawner thread's `/proc/thread-self/mountinfo`, opened before C's fork: it polls
    /// as urgent once a mount or unmount changed the supervisor's mount namespace.
    mounts: std::fs::File,
}

/// The plan of a container made ahead, at the start of its [`Region`].
#[derive(Clone, Copy)]
struct Ready {
    process: ProcessPlan,
    exec: ExecPointers,
    /// The plugin's working directory (an absolute path).
    cwd: *const libc::c_char,
}

impl Ahead {
    fn make() -> io::Result<Self> {
        let host = probe::host();
        if host.containment != Containment::Namespaces {
            return Err(io::Error::other("namespaces are unavailable here"));
        }
        // From the region's mapping to its `MADV_DONTFORK`, no other C is forked in
        // this process (another supervisor's spawner thread), which would keep it.
        let _forking = FORKING.lock().unwrap_or_else(PoisonError::into_inner);
        let region = Region::new(Region::SIZE)?;
        let (socket, theirs) = std::os::unix::net::UnixStream::pair()?;
        socket.set_read_timeout(Some(AHEAD_REPORT))?;
        let mounts = std::fs::File::open("/proc/thread-self/mountinfo")?;
        let thread: std::os::fd::OwnedFd = std::fs::File::open("/proc/thread-self")?.into();
        let made_with = Inherited::now(&thread)?;
        let plan = ChildPlan {
            namespaces: Some(Namespaces::new(
                !host.running_as_root,
                host.private_proc.available,
            )),
            process: ProcessPlan {
                supervisor: Pid::this(),
                contained: true,
                user: None,
                limits: Limits {
                    open_files: None,
                    memory_bytes: None,
                },
                landlock: None,
                proc_rule: None,
                drop_capabilities: false,
            },
            exec: None,
            ahead: Some(contain::Waiting {
                socket: theirs.as_raw_fd(),
                region: (region.base as usize, region.len),
            }),
        };
        // C never executes this program: it returns from the hook only to end.
        // Returns once C and the init have closed their copies of the supervisor's
        // descriptors: the container is about ready.
        let mut command = Command::new("/");
        command.env_clear();
        let child = forked(command, plan)?;
        drop(theirs);
        // Only this container's C maps the region: no later fork (another plugin's C)
        // inherits it, nor the plans written there.
        // SAFETY: the mapping made by `Region::new`, still this value's.
        unsafe {
            libc::madvise(region.base.cast(), region.len, libc::MADV_DONTFORK);
        }
        Ok(Self {
            child: Some(child),
            socket,
            region,
            made_with,
            thread,
            mounts,
        })
    }

    /// Whether what C inherited is still what a process started now would: no mount
    /// or unmount since, and the same [`Inherited`].
    fn current(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.mounts.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let polled = unsafe { libc::poll(&raw mut poll, 1, 0) };
        if polled != 0 {
            return false;
        }
        Inherited::now(&self.thread).is_ok_and(|now| now == self.made_with)
    }

    /// Starts the plugin `plan` describes in this container, with its working
    /// directory `cwd` (absolute). An error is the plugin's start failing, as it would
    /// have the usual way.
    fn start(mut self, plan: &ChildPlan, cwd: &CStr) -> io::Result<Outcome> {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let Some(exec) = &plan.exec else {
            return Ok(Outcome::Unfit(self));
        };
        // A bare name is looked up by glibc on the caller's `PATH`, read from memory
        // the container no longer maps: programs given as paths only (the control
        // plane resolves every manifest's).
        if !exec.program.as_bytes().contains(&b'/') {
            return Ok(Outcome::Unfit(self));
        }
        if !self.region.write(plan.process, exec, cwd) {
            return Ok(Outcome::Unfit(self));
        }
        tracing::trace!(target: STEPS, step = "launch prepared");
        let fds: Vec<RawFd> = plan.process.landlock.into_iter().collect();
        let control = [ControlMessage::ScmRights(&fds)];
        let control: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &control };
        let word = [io::IoSlice::new(&[1])];
        let socket = self.socket.as_raw_fd();
        if sendmsg::<()>(socket, &word, control, MsgFlags::MSG_NOSIGNAL, None).is_err() {
            return Ok(Outcome::Lost);
        }
        let mut report = [0_u8; 8];
        if let Err(error) = io::Read::read_exact(&mut &self.socket, &mut report) {
            // The init ended before it said anything (the namespace ended with it), or
            // said nothing in time (it is killed with C when this is dropped).
            tracing::debug!("the container made ahead did not report: {error}");
            return Ok(Outcome::Lost);
        }
        if let Some(failure) = contain::setup_failure(report) {
            return Err(io::Error::from(failure.errno));
        }
        Ok(self.child.take().map_or(Outcome::Lost, |child| {
            Outcome::Started(Child::Forked(child))
        }))
    }
}

/// What a process forked from the spawner thread inherits from it, beyond its memory
/// and descriptors: what a container made ahead keeps from the moment it was made.
/// The kernel offers no single view of it; this is what the supervisor or its operator
/// can change while it runs (`prlimit`, `renice`, `taskset`, a cgroup move,
/// `oom_score_adj`, `setns`, credentials).
#[derive(Debug, PartialEq, Eq)]
struct Inherited {
    /// The lines of the spawner thread's `/proc/thread-self/status` that a child
    /// inherits: umask, ids and groups, capabilities, `no_new_privs`, seccomp, the CPUs
    /// and memory nodes it may use.
    status: Vec<String>,
    cgroup: String,
    oom_score_adj: String,
    /// Every resource limit, soft and hard.
    limits: Vec<(u64, u64)>,
    nice: libc::c_int,
    /// The scheduling policy and its priority, and the I/O priority.
    scheduling: (libc::c_int, libc::c_int, libc::c_long),
    coredump_filter: String,
    /// The namespaces' identities.
    namespaces: Vec<Option<OsString>>,
}

impl Inherited {
    /// Read through `thread`, the spawner thread's `/proc/thread-self` (opened once:
    /// half the cost of walking the path each time).
    fn now(thread: &std::os::fd::OwnedFd) -> io::Result<Self> {
        const STATUS: [&str; 12] = [
            "Umask:",
            "Uid:",
            "Gid:",
            "Groups:",
            "NoNewPrivs:",
            "Seccomp:",
            "CapInh:",
            "CapPrm:",
            "CapBnd:",
            "CapAmb:",
            "Cpus_allowed_list:",
            "Mems_allowed_list:",
        ];
        let read = |name: &str| -> io::Result<String> {
            let fd = nix::fcntl::openat(
                thread,
                name,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            io::read_to_string(std::fs::File::from(fd))
        };
        let status = read("status")?
            .lines()
            .filter(|line| STATUS.iter().any(|field| line.starts_with(field)))
            .map(str::to_owned)
            .collect();
        let limits = [
            libc::RLIMIT_CPU,
            libc::RLIMIT_FSIZE,
            libc::RLIMIT_DATA,
            libc::RLIMIT_STACK,
            libc::RLIMIT_CORE,
            libc::RLIMIT_RSS,
            libc::RLIMIT_NPROC,
            libc::RLIMIT_NOFILE,
            libc::RLIMIT_MEMLOCK,
            libc::RLIMIT_AS,
            libc::RLIMIT_LOCKS,
            libc::RLIMIT_SIGPENDING,
            libc::RLIMIT_MSGQUEUE,
            libc::RLIMIT_NICE,
            libc::RLIMIT_RTPRIO,
            libc::RLIMIT_RTTIME,
        ]
        .into_iter()
        .map(|resource| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain system call into a local.
            unsafe { libc::getrlimit(resource, &raw mut limit) };
            (limit.rlim_cur, limit.rlim_max)
        })
        .collect();
        // SAFETY: plain system calls (the calling thread's priorities), the second into
        // a local.
        let (nice, policy, priority, io) = unsafe {
            let mut param = libc::sched_param { sched_priority: 0 };
            libc::sched_getparam(0, &raw mut param);
            (
                libc::getpriority(libc::PRIO_PROCESS, 0),
                libc::sched_getscheduler(0),
                param.sched_priority,
                // IOPRIO_WHO_PROCESS, this thread.
                libc::syscall(libc::SYS_ioprio_get, 1, 0),
            )
        };
        let namespaces = ["mnt", "net", "uts", "ipc", "user", "cgroup", "time", "pid"]
            .iter()
            .map(|ns| nix::fcntl::readlinkat(thread, format!("ns/{ns}").as_str()).ok())
            .collect();
        Ok(Self {
            status,
            cgroup: read("cgroup")?,
            oom_score_adj: read("oom_score_adj")?,
            limits,
            nice,
            scheduling: (policy, priority, io),
            coredump_filter: std::fs::read_to_string("/proc/self/coredump_filter")?,
            namespaces,
        })
    }
}

/// What became of a start in a container made ahead.
enum Outcome {
    /// The plugin runs in it.
    Started(Child),
    /// The plan does not fit the container's region: the container stays for another.
    Unfit(Ahead),
    /// The container is gone (or there was none): the plugin is started the usual way.
    Lost,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // Reaped by tokio's orphan queue, as every dropped child.
            let _ = child.start_kill();
        }
    }
}

/// Memory shared with a container made ahead, at the same address in both (mapped
/// before C's fork), that the plan is written to.
#[derive(Debug)]
struct Region {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is this value's alone in this process.
unsafe impl Send for Region {}

impl Region {
    /// Room for the plan: arguments and environment beyond it (the kernel takes at
    /// most a quarter of the stack limit, 2 MiB by default) go the usual way. Pages
    /// are allocated as they are written.
    const SIZE: usize = 1 << 20;

    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a new anonymous shared mapping.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            base: base.cast(),
            len,
        })
    }

    /// Writes the plan: a [`Ready`] at the start, pointing at copies of `exec`'s
    /// strings and `cwd` placed after it. `false` when it does not fit.
    fn write(&mut self, process: ProcessPlan, exec: &Exec, cwd: &CStr) -> bool {
        let mut used = size_of::<Ready>();
        let mut copy = |bytes: &[u8], align: usize| -> Option<*const u8> {
            let start = used.next_multiple_of(align);
            let end = start
                .checked_add(bytes.len())
                .filter(|&end| end <= self.len)?;
            // SAFETY: `start..end` is inside the mapping, and nothing else writes there.
            let at = unsafe { self.base.add(start) };
            // SAFETY: as above; `bytes` is not in the mapping.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len()) };
            used = end;
            Some(at.cast_const())
        };
        let mut strings = Vec::with_capacity(exec.strings.len());
        for string in &exec.strings {
            let Some(at) = copy(string.as_bytes_with_nul(), 1) else {
                return false;
            };
            strings.push(at.cast::<libc::c_char>());
        }
        let argc = exec.argv.len() - 1;
        let mut table = |pointers: &[*const libc::c_char]| -> Option<*const *const libc::c_char> {
            let pointers: Vec<*const libc::c_char> =
                pointers.iter().copied().chain([ptr::null()]).collect();
            // SAFETY: the bytes of a slice of pointers.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    pointers.as_ptr().cast::<u8>(),
                    size_of_val(pointers.as_slice()),
                )
            };
            copy(bytes, align_of::<*const libc::c_char>()).map(<*const u8>::cast)
        };
        let (Some(argv), Some(envp)) = (table(&strings[..argc]), table(&strings[argc..])) else {
            return false;
        };
        let Some(cwd) = copy(cwd.to_bytes_with_nul(), 1) else {
            return false;
        };
        let ready = Ready {
            process,
            exec: ExecPointers {
                program: strings[0],
                argv,
                envp,
            },
            cwd: cwd.cast(),
        };
        // SAFETY: the mapping starts page-aligned, with room for a `Ready` kept above.
        #[allow(clippy::cast_ptr_alignment)] // page-aligned: `mmap`'s
        unsafe {
            ptr::write(self.base.cast::<Ready>(), ready);
        }
        true
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, used by nothing else in this process.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// Makes the supervisor's process non-dumpable: other processes of its user can no
/// longer read its `/proc/<pid>/environ` or memory, nor ptrace it.
pub(crate) fn make_undumpable() -> io::Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(io::Error::from)
}

fn spawn(request: SpawnRequest, warm: &mut Warm) -> io::Result<Spawned> {
    tracing::trace!(target: STEPS, step = "on the spawner thread");
    let limits = Limits::check(request.open_files, request.memory_bytes)?;
    let host = probe::host();
    let mut notes: Vec<String> = Vec::new();

    let user = run_as(&request.sandbox, host, &mut notes);
    let (state_dir, shared_parent) = match request
        .sandbox
        .filesystem
        .as_ref()
        .and_then(|fs| fs.state_dir.clone())
    {
        Some(dir) => (dir, false),
        None => (
            fs_sandbox::default_state_dir(&request.plugin, nix::unistd::geteuid().as_raw()),
            true,
        ),
    };
    fs_sandbox::prepare_state_dir(&state_dir, user.map(|u| (u.uid, u.gid)), shared_parent)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, error_chain(&e)))?;

    let mut env = request.env;
    env.retain(|(name, _)| name != "TMPDIR" && name != ENV_STATE_DIR);
    env.push((ENV_STATE_DIR.into(), state_dir.clone().into()));
    env.push(("TMPDIR".into(), state_dir.clone().into()));

    let (filesystem, ruleset) = match &request.sandbox.filesystem {
        None => {
            notes.push("the filesystem sandbox is off for this plugin".into());
            (FilesystemSandbox::Off, None)
        }
        Some(_) if host.filesystem == FilesystemSandbox::Unavailable => {
            notes.extend(host.filesystem_detail.clone());
            (FilesystemSandbox::Unavailable, None)
        }
        Some(access) => {
            let homes = homes(user.map(|u| u.uid));
            let own_path = std::env::var_os("PATH");
            let path_env = sandbox_path(&env, own_path.as_deref());
            let rules: Vec<Rule> = fs_sandbox::rules(&Reach {
                program: &request.program,
                args: &request.args,
                root: &request.cwd,
                path_env,
                homes: &homes,
                read: &access.read,
                write: &access.write,
                state_dir: &state_dir,
                private_proc: private_proc(&request.sandbox, host),
            });
            let ruleset = fs_sandbox::ruleset(&rules).map_err(|e| {
                let kind = match e {
                    fs_sandbox::SandboxError::Declared { .. } => io::ErrorKind::InvalidInput,
                    fs_sandbox::SandboxError::Landlock(_) => io::ErrorKind::Other,
                };
                io::Error::new(kind, error_chain(&e))
            })?;
            notes.extend(host.filesystem_detail.clone());
            tracing::trace!(target: STEPS, step = "Landlock ruleset built");
            (host.filesystem, ruleset)
        }
    };

    let namespaces = match (request.sandbox.contain, host.containment) {
        (false, _) => {
            notes.push("containment is off for this plugin: a process it starts that leaves its process group can outlive it".into());
            None
        }
        (true, Containment::ProcessGroup) => {
            notes.push(format!(
                "namespaces are unavailable here ({}): a process the plugin starts that leaves its process group can outlive it",
                host.namespaces.reason.as_deref().unwrap_or("no reason given")
            ));
            None
        }
        (true, _) => {
            if let Some(reason) = &host.private_proc.reason {
                notes.push(format!("no private /proc: {reason}"));
            }
            Some(Namespaces::new(
                !host.running_as_root,
                host.private_proc.available,
            ))
        }
    };
    let contained = namespaces.is_some();
    // Both the contained plugin's process (see `contain`) and a plugin started
    // sharing the supervisor's memory (`spawn_plugin`) run their program themselves.
    let shared = !contained && child::process_descriptors();
    let exec = if contained || shared {
        Some(Exec::new(&request.program, &request.args, &env)?)
    } else {
        None
    };
    let proc_rule =
        (ruleset.is_some() && private_proc(&request.sandbox, host)).then(fs_sandbox::proc_access);

    let plan = ChildPlan {
        namespaces,
        process: ProcessPlan {
            supervisor: Pid::this(),
            contained,
            user: user.map(|u| (u.uid, u.gid)),
            limits,
            landlock: ruleset.as_ref().map(AsRawFd::as_raw_fd),
            proc_rule,
            drop_capabilities: request.sandbox.filesystem.is_some(),
        },
        exec,
        ahead: None,
    };
    let cwd = || {
        CString::new(request.cwd.as_os_str().as_encoded_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "nul byte found in provided data",
            )
        })
    };
    let mut made_ahead = false;
    let child = if shared {
        tracing::trace!(target: STEPS, step = "launch prepared");
        spawn_plugin(&plan, &cwd()?)?
    } else {
        if contained {
            warm.wanted = true;
        }
        let ahead = if contained && request.cwd.is_absolute() {
            warm.take()
        } else {
            None
        };
        let outcome = match ahead {
            Some(ahead) => ahead.start(&plan, &cwd()?)?,
            None => Outcome::Lost,
        };
        if let Outcome::Started(child) = outcome {
            made_ahead = true;
            child
        } else {
            if let Outcome::Unfit(ahead) = outcome {
                warm.ready = Some(ahead);
            }
            spawn_forked(plan, &request.program, &request.args, &request.cwd, env)?
        }
    };
    tracing::trace!(target: STEPS, step = "forked and executed");
    // The plugin's process holds its own copy until it has enforced it.
    drop(ruleset);
    let leader = child.id();
    let pid = if contained {
        contained_pid(leader).unwrap_or(leader)
    } else {
        leader
    };
    tracing::trace!(target: STEPS, step = "plugin's pid found");
    let isolation = Isolation {
        containment: if contained {
            Containment::Namespaces
        } else {
            Containment::ProcessGroup
        },
        filesystem,
        user: host
            .running_as_root
            .then(|| user.map_or_else(|| "root".to_owned(), |u| u.name.clone())),
        state_dir,
        detail: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    Ok(Spawned {
        child,
        pid,
        isolation,
        made_ahead,
    })
}

/// The `PATH` the sandbox looks programs up on, for what `env` or a `#!` line runs: the
/// one the plugin runs with (the last of its name wins, as in `Exec`), and only when it
/// is the supervisor's own. A `PATH` of the manifest's choosing gets no lookup at all:
/// it could point at any installation, or order its directories so that the program
/// found here is not the one that runs.
fn sandbox_path<'a>(env: &'a [(OsString, OsString)], own: Option<&OsStr>) -> Option<&'a OsStr> {
    env.iter()
        .rfind(|(name, _)| name == "PATH")
        .map(|(_, value)| value.as_os_str())
        .filter(|path| Some(*path) == own)
}

/// Starts the plugin (or C, for a contained one) with `Command`: a `fork`, then the
/// plan's hook between `fork` and `exec`.
fn spawn_forked(
    plan: ChildPlan,
    program: &std::path::Path,
    args: &[String],
    cwd: &std::path::Path,
    env: Vec<(OsString, OsString)>,
) -> io::Result<Child> {
    let mut command = Command::new(program);
    command.args(args).current_dir(cwd).env_clear().envs(env);
    tracing::trace!(target: STEPS, step = "launch prepared");
    let _forking = FORKING.lock().unwrap_or_else(PoisonError::into_inner);
    forked(command, plan).map(Child::Forked)
}

/// Forks `command`'s child with its standard streams piped, and runs `plan` in it
/// before the `exec`.
fn forked(mut command: Command, plan: ChildPlan) -> io::Result<tokio::process::Child> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe operations are allowed: `ChildPlan::run` makes system calls
    // only, on data prepared above, and builds errors from raw errno values.
    unsafe {
        command.pre_exec(move || plan.run().map_err(io::Error::from));
    }
    command.spawn()
}

/// Starts a plugin that is not contained the way `posix_spawn` does: its process
/// shares the supervisor's memory until its `exec`, the spawner thread waiting
/// meanwhile (`CLONE_VM | CLONE_VFORK`), so the supervisor's page tables are neither
/// copied for it nor torn down at its `exec`, and the supervisor's later writes do not
/// fault on pages shared with a copy. The process does what `Command` would
/// ([`ProcessPlan::exec_direct`]) and is waited for through a process descriptor.
fn spawn_plugin(plan: &ChildPlan, cwd: &CStr) -> io::Result<Child> {
    let (stdin_read, stdin_write) = child::pipe()?;
    let (stdout_read, stdout_write) = child::pipe()?;
    let (stderr_read, stderr_write) = child::pipe()?;
    let streams = [
        (stdin_read.as_raw_fd(), 0),
        (stdout_write.as_raw_fd(), 1),
        (stderr_write.as_raw_fd(), 2),
    ];
    let failed = AtomicI32::new(0);
    let exec = plan.exec.as_ref().map(Exec::pointers);
    let start: &dyn Fn() = &|| {
        failed.store(
            plan.process.exec_direct(exec.as_ref(), &streams, cwd) as i32,
            Ordering::SeqCst,
        );
    };
    // Every signal blocked until the child has restored the default actions (as
    // `posix_spawn` does): no handler of the supervisor's runs in the child meanwhile.
    let mut mask = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::all()),
        Some(&mut mask),
    )?;
    let (pid, _) = contain::spawn_sharing_memory(&start, contain::Sharing::UntilExec);
    let spawned = if pid == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    };
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&mask),
        None,
    )?;
    spawned?;
    let errno = failed.load(Ordering::SeqCst);
    if errno != 0 {
        contain::reap(pid);
        return Err(io::Error::from_raw_os_error(errno));
    }
    drop((stdin_read, stdout_write, stderr_write));
    let id = u32::try_from(pid).expect("a started process has a positive pid");
    child::SharedChild::new(id, stdin_write, stdout_read, stderr_read)
        .map(Child::Shared)
        .inspect_err(|_| {
            // No handle to supervise it: it must not run unsupervised.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            contain::reap(pid);
        })
}

/// Whether the plugin gets a private `/proc`.
fn private_proc(sandbox: &Sandbox, host: &HostIsolation) -> bool {
    sandbox.contain && host.namespaces.available && host.private_proc.available
}

/// The user to switch to: the configured one when the supervisor is root.
fn run_as<'a>(
    sandbox: &'a Sandbox,
    host: &HostIsolation,
    notes: &mut Vec<String>,
) -> Option<&'a crate::launch::RunAs> {
    match (&sandbox.user, host.running_as_root) {
        (Some(user), true) => Some(user),
        (Some(user), false) => {
            notes.push(format!(
                "the user `{}` is configured, but the supervisor does not run as root: the plugin runs as the supervisor's user",
                user.name
            ));
            None
        }
        (None, true) => {
            notes.push(
                "the supervisor runs as root and no user is configured: the plugin runs as root"
                    .into(),
            );
            None
        }
        (None, false) => None,
    }
}

/// Home directories never granted whole: `$HOME`, the supervisor's and the plugin
/// user's.
fn homes(plugin_uid: Option<u32>) -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = std::env::var_os("HOME")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let uids = [
        Some(nix::unistd::geteuid()),
        plugin_uid.map(nix::unistd::Uid::from_raw),
    ];
    for uid in uids.into_iter().flatten() {
        if let Ok(Some(user)) = nix::unistd::User::from_uid(uid) {
            homes.push(user.dir);
        }
    }
    homes
}

/// An error and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The plugin's process (G) of the contained child `leader` (C), in this PID
/// namespace: the child of C's only child (I) whose pid in its own namespace is 2.
/// `None` when it is already gone.
fn contained_pid(leader: u32) -> Option<u32> {
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    };
    let init = *children(leader).first()?;
    children(init).into_iter().find(|&pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("NSpid:"))
                    .and_then(|pids| pids.split_whitespace().last().map(|own| own == "2"))
            })
            .unwrap_or(false)
    })
}

/// What the child needs between fork and exec, prepared in the parent.
#[derive(Debug)]
struct ChildPlan {
    namespaces: Option<Namespaces>,
    process: ProcessPlan,
    /// What a contained plugin's process executes.
    exec: Option<Exec>,
    /// For a container made ahead ([`Ahead`]): C's end of the socket the word to
    /// start comes on, and the region the plan is written to.
    ahead: Option<contain::Waiting>,
}

/// What the plugin's process takes before its `exec`: plain values, so that a
/// container made ahead can read them from the region the supervisor writes them to.
#[derive(Clone, Copy, Debug)]
struct ProcessPlan {
    /// The supervisor's pid: the plugin's parent when it is not contained.
    supervisor: Pid,
    /// Whether the plugin's process is the namespace's second process (its parent the
    /// init).
    contained: bool,
    /// The uid and gid to switch to.
    user: Option<(u32, u32)>,
    limits: Limits,
    /// The Landlock ruleset to enforce.
    landlock: Option<RawFd>,
    /// The rights on the private `/proc`, a rule only the plugin's process can add:
    /// the procfs it mounted is not the parent's.
    proc_rule: Option<u64>,
    /// Whether the plugin keeps no capability (with the filesystem sandbox on): a
    /// plugin run as root is root by its uid only.
    drop_capabilities: bool,
}

/// A program, its arguments and its environment as `execve` takes them, prepared in
/// the parent: the contained plugin's process calls `exec` itself, sharing its
/// parent's memory until then (no allocation there). The same as what `Command`
/// executes: `argv[0]` is the program, the environment is sorted by name and the last
/// value of a name wins.
#[derive(Debug)]
struct Exec {
    program: CString,
    strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

/// An [`Exec`]'s pointers, wherever its strings are (the supervisor's heap, or the
/// region of a container made ahead).
#[derive(Clone, Copy, Debug)]
struct ExecPointers {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

// SAFETY: the pointers point into `program` and `strings`, owned alongside and never
// changed; nothing writes through them.
unsafe impl Send for Exec {}
// SAFETY: as above.
unsafe impl Sync for Exec {}

impl Exec {
    fn new(
        program: &std::path::Path,
        args: &[String],
        env: &[(OsString, OsString)],
    ) -> io::Result<Self> {
        use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
        let nul = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "nul byte found in provided data",
            )
        };
        let c_string = |bytes: Vec<u8>| CString::new(bytes).map_err(|_| nul());
        let program = c_string(program.as_os_str().as_bytes().to_vec())?;
        let mut strings = vec![program.clone()];
        for arg in args {
            strings.push(c_string(arg.clone().into_bytes())?);
        }
        let argc = strings.len();
        let vars: std::collections::BTreeMap<&OsString, &OsString> =
            env.iter().map(|(name, value)| (name, value)).collect();
        for (name, value) in vars {
            let mut pair = name.clone().into_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            strings.push(c_string(pair)?);
        }
        let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(Self {
            argv: pointers(&strings[..argc]),
            envp: pointers(&strings[argc..]),
            program,
            strings,
        })
    }

    fn pointers(&self) -> ExecPointers {
        ExecPointers {
            program: self.program.as_ptr(),
            argv: self.argv.as_ptr(),
            envp: self.envp.as_ptr(),
        }
    }
}

/// `struct landlock_path_beneath_attr` of the kernel's UAPI.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: RawFd,
}

impl ChildPlan {
    /// The `pre_exec` hook (see the module docs). Async-signal-safe.
    fn run(&self) -> Result<(), Errno> {
        // A session of its own: the leader of a new process group, and no controlling
        // terminal, so that nothing the plugin starts can open the operator's `/dev/tty`
        // (and type into its shell with `TIOCSTI`, or stop the supervisor with `^Z`).
        nix::unistd::setsid()?;
        if let Some(namespaces) = &self.namespaces {
            // C: dies with the spawner thread, and its copy of the supervisor's memory
            // cannot be read through /proc or ptrace, whatever the embedder chose for
            // the supervisor itself.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if getppid() != self.process.supervisor {
                return Err(Errno::ESRCH);
            }
            nix::sys::prctl::set_dumpable(false)?;
            // What the plugin's process runs is copied to C's stack: a container made
            // ahead drops C's copy of the supervisor's heap before it runs.
            let failure = if let Some(waiting) = self.ahead {
                let region = waiting.region.0;
                namespaces.enter(contain::Start {
                    plugin: &move |ruleset| start_ahead(region, ruleset),
                    ahead: Some(waiting),
                })
            } else {
                let (process, exec) = (self.process, self.exec.as_ref().map(Exec::pointers));
                namespaces.enter(contain::Start {
                    plugin: &move |_| process.exec_contained(exec.as_ref()),
                    ahead: None,
                })
            };
            // Returns only when containment or the plugin's start failed.
            return Err(failure.errno);
        }
        self.process.confine()
    }
}

/// G of a container made ahead: runs the plan the supervisor wrote at the start of
/// `region` (a [`Ready`]), with the ruleset's descriptor received with the word to
/// start. Returns only the errno of what failed. Async-signal-safe.
fn start_ahead(region: usize, ruleset: Option<RawFd>) -> Errno {
    // SAFETY: the supervisor wrote a `Ready` there before the word to start, and
    // changes nothing in the region until the init has reported.
    let ready = unsafe { ptr::read(region as *const Ready) };
    let mut process = ready.process;
    if process.landlock.is_some() && ruleset.is_none() {
        return Errno::EBADF;
    }
    process.landlock = ruleset;
    // SAFETY: a NUL-terminated path in the region.
    if unsafe { libc::chdir(ready.cwd) } == -1 {
        return Errno::last();
    }
    process.exec_contained(Some(&ready.exec))
}

impl ProcessPlan {
    /// G, the plugin's process, in the new namespaces: leads its own process group,
    /// takes the signals back, is confined and executes the plugin. Returns only the
    /// errno of what failed. Async-signal-safe.
    fn exec_contained(&self, exec: Option<&ExecPointers>) -> Errno {
        // SAFETY: plain system call.
        if let Err(errno) = Errno::result(unsafe { libc::setpgid(0, 0) }) {
            return errno;
        }
        contain::reset_handlers();
        contain::block_signals(libc::SIG_UNBLOCK);
        self.confine_and_exec(exec)
    }

    /// A plugin that is not contained, started sharing the supervisor's memory
    /// (`spawn_plugin`): does what `Command` does in its child (the standard streams
    /// from `streams`, each a descriptor and where it goes, the working directory, a
    /// session and process group of its own, no blocked signal and default actions, SIGPIPE's
    /// included), then what every plugin takes, and executes the plugin. Returns only
    /// the errno of what failed. Async-signal-safe.
    fn exec_direct(
        &self,
        exec: Option<&ExecPointers>,
        streams: &[(RawFd, RawFd); 3],
        cwd: &CStr,
    ) -> Errno {
        for &(fd, target) in streams {
            // SAFETY: plain system call on descriptors of this process.
            if unsafe { libc::dup2(fd, target) } == -1 {
                return Errno::last();
            }
        }
        // SAFETY: a NUL-terminated path prepared in the parent.
        if unsafe { libc::chdir(cwd.as_ptr()) } == -1 {
            return Errno::last();
        }
        // A session of its own, as in `run`.
        // SAFETY: plain system call.
        if unsafe { libc::setsid() } == -1 {
            return Errno::last();
        }
        // It shares the supervisor's memory: none of the supervisor's handlers may run
        // here (every signal is blocked until now); and the Rust runtime's ignored
        // SIGPIPE would outlive the `exec`.
        contain::reset_handlers();
        contain::set_default(libc::SIGPIPE);
        contain::block_signals(libc::SIG_UNBLOCK);
        self.confine_and_exec(exec)
    }

    /// Confines this process ([`ProcessPlan::confine`]) and executes the plugin's
    /// program itself. Returns only the errno of what failed. Async-signal-safe.
    fn confine_and_exec(&self, exec: Option<&ExecPointers>) -> Errno {
        if let Err(errno) = self.confine() {
            return errno;
        }
        let Some(exec) = exec else {
            return Errno::EINVAL;
        };
        // A path is executed as it is: `execvpe` would have `/bin/sh` run a file the
        // kernel refuses (`ENOEXEC`: a `#!` line naming a text file, another machine's
        // program), with the sandbox granted for what the `#!` line named. A bare name
        // is looked up on `PATH`, as `Command` does.
        // SAFETY: NUL-terminated strings and null-terminated arrays of them, prepared
        // in the parent and alive until the `exec`.
        unsafe {
            if CStr::from_ptr(exec.program).to_bytes().contains(&b'/') {
                libc::execve(exec.program, exec.argv, exec.envp);
            } else {
                libc::execvpe(exec.program, exec.argv, exec.envp);
            }
        }
        Errno::last()
    }

    /// What every plugin's process takes just before `exec`, contained or not (see
    /// the module docs). Async-signal-safe.
    fn confine(&self) -> Result<(), Errno> {
        if let Some((uid, gid)) = self.user {
            switch_user(uid, gid)?;
        }
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        let parent = getppid();
        let expected = if self.contained {
            Pid::from_raw(1)
        } else {
            self.supervisor
        };
        if parent != expected {
            // The parent died before the death signal was armed.
            return Err(Errno::ESRCH);
        }
        self.limits.apply()?;
        if self.drop_capabilities {
            drop_capabilities();
        }
        contain::close_range(3, libc::c_int::MAX, libc::CLOSE_RANGE_CLOEXEC);
        if let Some(ruleset) = self.landlock {
            if let Some(allowed_access) = self.proc_rule {
                add_proc_rule(ruleset, allowed_access)?;
            }
            nix::sys::prctl::set_no_new_privs()?;
            // SAFETY: a ruleset descriptor made by the parent and inherited by fork.
            Errno::result(unsafe {
                libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0_u32)
            })?;
        }
        Ok(())
    }
}

/// Leaves nothing for `exec` to grant: the bounding set, the ambient set and the
/// inheritable set emptied, so that a program run as root starts with no capability
/// (no `CAP_SYS_PTRACE` to read processes it could not otherwise, no `CAP_MKNOD`, no
/// `CAP_CHOWN`...). The bounding and inheritable sets are emptied only for root: another
/// user gains no capability at `exec` but a program file's own (under Landlock's
/// `no_new_privs`, not even those).
/// Async-signal-safe.
fn drop_capabilities() {
    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
    const VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    // Ambient capabilities would survive the `exec` of any user's program.
    // SAFETY: plain system call.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    // Another user gains nothing at `exec` but what a program file's own capabilities
    // grant (under Landlock's `no_new_privs`, not even that); root would gain its
    // bounding set.
    // SAFETY: plain system call.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    for capability in 0..64 {
        // SAFETY: plain system call; `EINVAL` past the kernel's last capability.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) } != 0
            && Errno::last() == Errno::EINVAL
        {
            break;
        }
    }
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: the kernel's layouts, alive for both calls.
    unsafe {
        if libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) == 0 {
            for word in &mut data {
                word.inheritable = 0;
            }
            libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr());
        }
    }
}

/// Adds `/proc` (this process's, the private one when contained) to `ruleset`.
fn add_proc_rule(ruleset: RawFd, allowed_access: u64) -> Result<(), Errno> {
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
    // SAFETY: a static path.
    let proc =
        Errno::result(unsafe { libc::open(c"/proc".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
    let attr = PathBeneathAttr {
        allowed_access,
        parent_fd: proc,
    };
    // SAFETY: `attr` is the kernel's layout and outlives the call.
    let added = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &raw const attr,
            0_u32,
        )
    });
    // SAFETY: closing the descriptor opened above.
    unsafe {
        libc::close(proc);
    }
    added.map(drop)
}

/// `setgroups`, `setgid`, `setuid`, as raw system calls: they change this process
/// only, which is what a single-threaded child between fork and exec needs (glibc's
/// wrappers signal every thread the parent had).
fn switch_user(uid: u32, gid: u32) -> Result<(), Errno> {
    let groups = [gid];
    // SAFETY: plain system calls; `groups` outlives the first.
    unsafe {
        Errno::result(libc::syscall(libc::SYS_setgroups, 1_usize, groups.as_ptr()))?;
        Errno::result(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
        Errno::result(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
    }
    Ok(())
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
/// normal path is the stop escalation, after which [`ProcessGroup::sweep`] disarms it.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Pid,
    armed: AtomicBool,
}

impl ProcessGroup {
    /// The group led by `pid` (the leader of its own session, so of its own group).
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

    /// The sandbox looks programs up only on the supervisor's own `PATH`, and only when
    /// the plugin runs with it: not on one the manifest set, nor when it was overridden.
    #[test]
    fn programs_are_looked_up_only_on_the_supervisors_own_path() {
        let own = OsStr::new("/usr/local/bin:/usr/bin");
        let pair = |value: &str| (OsString::from("PATH"), OsString::from(value));
        let ours = [pair("/usr/local/bin:/usr/bin")];
        assert_eq!(sandbox_path(&ours, Some(own)), Some(own));
        let overridden = [pair("/usr/local/bin:/usr/bin"), pair("bin:/opt/app/bin")];
        assert_eq!(sandbox_path(&overridden, Some(own)), None);
        assert_eq!(sandbox_path(&[pair("/opt/app/bin")], Some(own)), None);
        assert_eq!(sandbox_path(&ours, None), None);
        assert_eq!(sandbox_path(&[], Some(own)), None);
    }

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

    fn request(contain: bool, script: &str) -> SpawnRequest {
        SpawnRequest {
            plugin: format!("os-unit-{}", std::process::id()),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
            open_files: Some(64),
            memory_bytes: None,
            sandbox: Sandbox::default().with_contain(contain),
        }
    }

    /// How a test starts its plugins.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum How {
        /// Not contained.
        Direct,
        /// Contained, the namespaces made for it.
        Contained,
        /// Contained, in a container made ahead.
        Ahead,
    }

    /// The ways this host can start a plugin (without namespaces, only `Direct`).
    fn ways() -> Vec<How> {
        if probe::host().containment == Containment::Namespaces {
            vec![How::Direct, How::Contained, How::Ahead]
        } else {
            eprintln!("namespaces are unavailable here: only the direct start is tried");
            vec![How::Direct]
        }
    }

    /// A spawner that makes a container ahead at once after each contained start,
    /// primed with one contained start: its next contained starts are made ahead.
    async fn spawner_ahead() -> Spawner {
        let spawner =
            Spawner::new(tokio::runtime::Handle::current(), Some(Duration::ZERO)).unwrap();
        let first = start(&spawner, request(true, "exit 0")).await.unwrap();
        assert!(
            !first.made_ahead,
            "the first contained start has nothing made ahead"
        );
        // Ended, so that it is not taken for a container ([`waiting_containers`]).
        ended(first).await;
        spawner
    }

    /// Spawns `script` as `how` says, on `spawners` (the plain one, the one that
    /// makes containers ahead), checking the start went that way.
    async fn spawn_as(spawners: &Spawners, how: How, script: &str) -> Spawned {
        spawn_request(spawners, how, request(how != How::Direct, script)).await
    }

    async fn spawn_request(spawners: &Spawners, how: How, request: SpawnRequest) -> Spawned {
        let spawned = start(spawners.get(how), request).await.unwrap();
        assert_eq!(spawned.made_ahead, how == How::Ahead, "{how:?}");
        spawned
    }

    /// A spawner that makes no container ahead, and (where namespaces are available)
    /// one that does ([`spawner_ahead`]).
    struct Spawners {
        plain: Spawner,
        ahead: Option<Spawner>,
    }

    impl Spawners {
        /// The spawner that starts plugins as `how` says.
        fn get(&self, how: How) -> &Spawner {
            match how {
                How::Ahead => self.ahead.as_ref().expect("namespaces are available"),
                How::Direct | How::Contained => &self.plain,
            }
        }
    }

    async fn spawners() -> Spawners {
        let plain = Spawner::new(tokio::runtime::Handle::current(), None).unwrap();
        let ahead = if probe::host().containment == Containment::Namespaces {
            Some(spawner_ahead().await)
        } else {
            None
        };
        Spawners { plain, ahead }
    }

    #[tokio::test]
    async fn children_are_group_leaders_with_a_scrubbed_environment() {
        let spawners = spawners().await;
        for how in ways() {
            let text = output(
                &spawners,
                how,
                "echo \"$$ $(ps -o pgid= -p $$) ${HOME:-none} ${SECRET:-unset} $(pwd)\"",
            )
            .await;
            let fields: Vec<_> = text.split_whitespace().collect();
            assert_eq!(
                fields[0], fields[1],
                "the child leads its own group ({how:?}): {text}"
            );
            assert_eq!(
                &fields[2..4],
                ["none", "unset"],
                "nothing but PATH was passed: {text}"
            );
            assert_eq!(
                std::path::Path::new(fields[4]),
                std::env::temp_dir().canonicalize().unwrap(),
                "{how:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_program_that_cannot_run_is_the_same_error_however_started() {
        let spawners = spawners().await;
        let mut errors = Vec::new();
        for how in ways() {
            let spawner = spawners.get(how);
            let mut missing = request(how != How::Direct, "");
            missing.program = "/nonexistent/outpost-plugin".into();
            let error = start(spawner, missing).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{how:?}: {error}");
            errors.push(error.to_string());
            let mut gone = request(how != How::Direct, "");
            gone.cwd = "/nonexistent/outpost-plugin-root".into();
            let error = start(spawner, gone).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{how:?}: {error}");
            let mut nul = request(how != How::Direct, "");
            nul.args.push("a\0b".into());
            let error = start(spawner, nul).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
            if how == How::Ahead {
                // A failed start used its container up; the next one is made ahead
                // again.
                let fine = start(spawner, request(true, "exit 0")).await.unwrap();
                assert!(fine.made_ahead);
            }
        }
        errors.dedup();
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[tokio::test]
    async fn plugins_start_with_no_signal_blocked_and_sigpipe_not_ignored() {
        let spawners = spawners().await;
        for how in ways() {
            let text = output(
                &spawners,
                how,
                "grep -E '^(SigBlk|SigIgn):' /proc/self/status",
            )
            .await;
            let mask = |name: &str| {
                let line = text.lines().find(|l| l.starts_with(name)).unwrap();
                u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
            };
            assert_eq!(mask("SigBlk:"), 0, "{how:?}: {text}");
            let sigpipe = 1 << (libc::SIGPIPE - 1);
            assert_eq!(mask("SigIgn:") & sigpipe, 0, "{how:?}: {text}");
        }
    }

    /// What `script` writes to its stdout, started as `how` says; it must succeed.
    async fn output(spawners: &Spawners, how: How, script: &str) -> String {
        let mut child = spawn_as(spawners, how, script).await.child;
        let (_stdin, mut stdout, _stderr) = child.take_streams().unwrap();
        let text = all_of(&mut stdout).await;
        assert!(exit(&mut child).await.success(), "{script}: {text}");
        text
    }

    /// How `script` ends, started as `how` says.
    async fn ending(spawners: &Spawners, how: How, script: &str) -> ExitDescription {
        let mut spawned = spawn_as(spawners, how, script).await;
        ExitDescription::from_status(exit(&mut spawned.child).await)
    }

    #[tokio::test]
    async fn containment_passes_the_exact_exit_on() {
        let spawners = spawners().await;
        if spawners.ahead.is_none() {
            eprintln!("namespaces are unavailable here; nothing to compare");
            return;
        }
        for script in [
            "exit 0",
            "exit 3",
            "exit 78",
            "kill -SEGV $$",
            "kill -TERM $$",
            "kill -KILL $$",
            "kill -QUIT $$",
        ] {
            let direct = ending(&spawners, How::Direct, script).await;
            for how in [How::Contained, How::Ahead] {
                let contained = ending(&spawners, how, script).await;
                assert_eq!(contained, direct, "`{script}`, {how:?}");
            }
        }
    }

    /// A plan too large for a container's region is started the usual way, and the
    /// container waits for the next.
    #[tokio::test]
    async fn a_plan_that_does_not_fit_is_started_the_usual_way() {
        let spawners = spawners().await;
        if spawners.ahead.is_none() {
            eprintln!("namespaces are unavailable here; nothing to check");
            return;
        }
        let mut large = request(true, "read line; echo \"${#BIG0} ${#BIG7}\"");
        for n in 0..8 {
            large
                .env
                .push((format!("BIG{n}").into(), "x".repeat(128 * 1024 - 16).into()));
        }
        let spawner = spawners.get(How::Ahead);
        let mut spawned = start(spawner, large).await.unwrap();
        assert!(!spawned.made_ahead, "started the usual way");
        // Made while the container waited, this C does not map its plan's region (the
        // shared anonymous mapping, `/dev/zero (deleted)`): no later plan can be read
        // from another plugin's C.
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", spawned.child.id())).unwrap();
        assert!(!maps.contains("/dev/zero"), "{maps}");
        let (stdin, mut stdout, _stderr) = spawned.child.take_streams().unwrap();
        drop(stdin);
        let text = all_of(&mut stdout).await;
        assert_eq!(text.trim(), format!("{n} {n}", n = 128 * 1024 - 16));
        assert!(exit(&mut spawned.child).await.success());
        // The container waited: the next start is made ahead.
        let _ = spawn_as(&spawners, How::Ahead, "exit 0").await;
    }

    /// A container made ahead is not used once the supervisor's state changed from what
    /// its C inherited (limits, mounts), and a stopped one does not hold the spawner.
    /// In a process of its own: what it changes is the whole process's.
    #[test]
    fn a_stale_or_stopped_container_made_ahead_is_not_used() {
        const ALONE: &str = "OUTPOST_OS_TEST_ALONE";
        // Generous: the test takes about six seconds (five of them the stopped
        // container's), and a start held for good must fail the run, not hang it.
        const BOUND: Duration = Duration::from_mins(2);
        if std::env::var_os(ALONE).is_none() {
            let mut alone = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "data::os::tests::a_stale_or_stopped_container_made_ahead_is_not_used",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ALONE, "1")
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + BOUND;
            let status = loop {
                if let Some(status) = alone.try_wait().unwrap() {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    // Its containers die with its spawner thread.
                    let _ = alone.kill();
                    let _ = alone.wait();
                    panic!("the test in its own process did not end within {BOUND:?}: killed");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(status.success(), "the test in its own process: {status}");
            return;
        }
        if probe::host().containment != Containment::Namespaces {
            eprintln!("namespaces are unavailable here; nothing to check");
            return;
        }
        if nix::unistd::geteuid().is_root() {
            // Its mounts in a mount namespace of its own, where nothing propagates
            // back: another test's containers made ahead must not see them. (The
            // threads made from here on, the spawner's among them, share it.)
            // SAFETY: plain system calls with static strings or null pointers.
            unsafe {
                assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0);
                assert_eq!(
                    libc::mount(
                        ptr::null(),
                        c"/".as_ptr(),
                        ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        ptr::null(),
                    ),
                    0
                );
            }
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(stale_or_stopped());
    }

    async fn stale_or_stopped() {
        let spawner = spawner_ahead().await;
        let core = || {
            let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap();
            (soft, hard)
        };
        // A limit changed since the container was made: the plugin gets the new one.
        wait_for_a_container();
        let (soft, hard) = core();
        let lowered = if soft == 0 { hard.min(4096) } else { 0 };
        setrlimit(Resource::RLIMIT_CORE, lowered, hard).unwrap();
        let script = "grep '^Max core file size' /proc/self/limits";
        for made_ahead in [false, true] {
            let mut spawned = start(&spawner, request(true, script)).await.unwrap();
            assert_eq!(
                spawned.made_ahead, made_ahead,
                "a stale container is dropped, then made again"
            );
            let (_stdin, mut stdout, _stderr) = spawned.child.take_streams().unwrap();
            let text = all_of(&mut stdout).await;
            let fields: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(fields[4], lowered.to_string(), "{text}");
            ended(spawned).await;
        }
        setrlimit(Resource::RLIMIT_CORE, soft, hard).unwrap();
        ended(start(&spawner, request(true, "exit 0")).await.unwrap()).await;
        // The spawner thread reniced since (a per-thread value): the plugin gets it.
        wait_for_a_container();
        let tid = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .find(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim() == "outpost-spawner")
            })
            .and_then(|task| task.file_name().to_str()?.parse::<libc::id_t>().ok())
            .expect("the spawner thread");
        // SAFETY: plain system call.
        assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 7) }, 0);
        let mut spawned = start(&spawner, request(true, "cut -d' ' -f19 /proc/self/stat"))
            .await
            .unwrap();
        assert!(!spawned.made_ahead, "made before the renice");
        let (_stdin, mut stdout, _stderr) = spawned.child.take_streams().unwrap();
        let text = all_of(&mut stdout).await;
        assert_eq!(text.trim(), "7");
        ended(spawned).await;
        // Its I/O priority lowered since (ionice -c 3): not made ahead either.
        wait_for_a_container();
        // SAFETY: plain system call: IOPRIO_WHO_PROCESS, the idle class.
        let set = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, tid, 3 << 13) };
        assert_eq!(set, 0, "{}", io::Error::last_os_error());
        let spawned = start(&spawner, request(true, "exit 0")).await.unwrap();
        assert!(!spawned.made_ahead, "made before the ionice");
        ended(spawned).await;
        // A mount made since (as root): the plugin sees it.
        if nix::unistd::geteuid().is_root() {
            wait_for_a_container();
            let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
            let target = CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: NUL-terminated strings.
            let mounted = unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    ptr::null(),
                )
            };
            assert_eq!(mounted, 0, "{}", io::Error::last_os_error());
            std::fs::write(dir.path().join("mounted"), "after").unwrap();
            let script = format!("cat {}/mounted", dir.path().display());
            let mut spawned = start(&spawner, request(true, &script)).await.unwrap();
            assert!(!spawned.made_ahead, "made before the mount");
            let (_stdin, mut stdout, _stderr) = spawned.child.take_streams().unwrap();
            let text = all_of(&mut stdout).await;
            assert_eq!(text, "after");
            ended(spawned).await;
            // SAFETY: the path mounted above.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
        // A stopped container (its C and init, the only processes here with no
        // plugin under them) does not hold the start: it is given up after a while.
        ended(start(&spawner, request(true, "exit 0")).await.unwrap()).await;
        let _stopped = Stopped::stop(&wait_for_a_container());
        let spawned = start(&spawner, request(true, "exit 0")).await.unwrap();
        assert!(!spawned.made_ahead);
    }

    /// Processes a test stopped (SIGSTOP), killed when it ends, however it ends: a
    /// stopped process must not outlive it. Signalled through process descriptors, so
    /// never a process that took the pid of one already gone.
    struct Stopped(Vec<std::os::fd::OwnedFd>);

    impl Stopped {
        fn stop(pids: &[u32]) -> Self {
            let stopped = Self(
                pids.iter()
                    .map(|pid| child::pidfd_open(*pid).unwrap())
                    .collect(),
            );
            for pidfd in &stopped.0 {
                assert!(
                    Self::signal(pidfd, libc::SIGSTOP),
                    "{}",
                    io::Error::last_os_error()
                );
            }
            stopped
        }

        /// Whether `signal` was sent to `pidfd`'s process.
        fn signal(pidfd: &std::os::fd::OwnedFd, signal: libc::c_int) -> bool {
            // SAFETY: plain system call on a descriptor this value owns; no siginfo.
            let sent = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signal,
                    ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            sent == 0
        }
    }

    impl Drop for Stopped {
        fn drop(&mut self) {
            for pidfd in &self.0 {
                // Those already gone (C once the start gave it up) are not signalled.
                Self::signal(pidfd, libc::SIGKILL);
            }
        }
    }

    /// How long a start, an exit or the end of a plugin's output may take before the
    /// test fails: the spawner thread that never answers, or the exit that never comes,
    /// must fail the run, not hang it.
    const PATIENCE: Duration = Duration::from_secs(30);

    /// `future`'s output, or a failure naming `what` after [`PATIENCE`].
    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(PATIENCE, future)
            .await
            .unwrap_or_else(|_| panic!("{what}: nothing after {PATIENCE:?}"))
    }

    /// Starts `request` on `spawner`.
    async fn start(spawner: &Spawner, request: SpawnRequest) -> io::Result<Spawned> {
        within("the spawner thread's answer", spawner.spawn(request)).await
    }

    /// How `child` ended.
    async fn exit(child: &mut Child) -> std::process::ExitStatus {
        within("the plugin's exit", child.wait()).await.unwrap()
    }

    /// All a plugin writes to `stdout`, up to its end.
    async fn all_of(stdout: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
        let mut text = String::new();
        within(
            "the end of the plugin's output",
            tokio::io::AsyncReadExt::read_to_string(stdout, &mut text),
        )
        .await
        .unwrap();
        text
    }

    /// A start whose caller went away before its answer (a runner dropped with its
    /// supervisor while the spawner thread started its plugin) is not left running
    /// unsupervised: the spawner thread kills it.
    #[tokio::test]
    async fn a_start_nobody_waits_for_is_killed() {
        let spawners = spawners().await;
        for how in ways() {
            let mark = format!("OUTPOST_TEST_UNWANTED={}-{how:?}", std::process::id());
            let (name, value) = mark.split_once('=').unwrap();
            let mut unwanted = request(how != How::Direct, "exec sleep 60");
            unwanted.env.push((name.into(), value.into()));
            // Sent, then dropped before the thread can have answered (a start takes
            // milliseconds).
            let given_up = Box::pin(spawners.get(how).spawn(unwanted));
            assert!(futures_util::FutureExt::now_or_never(given_up).is_none());
            // The thread takes its jobs in order: once it answered the next one, it
            // has started the first.
            let next = request(how != How::Direct, "exit 0");
            ended(start(spawners.get(how), next).await.unwrap()).await;
            let marked = || {
                std::fs::read_dir("/proc")
                    .unwrap()
                    .flatten()
                    .filter(|entry| {
                        std::fs::read(entry.path().join("environ")).is_ok_and(|environ| {
                            environ
                                .split(|&byte| byte == 0)
                                .any(|pair| pair == mark.as_bytes())
                        })
                    })
                    .count()
            };
            let deadline = std::time::Instant::now() + PATIENCE;
            while marked() > 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{how:?}: still running"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// Waits for a started plugin (and C) to end.
    async fn ended(mut spawned: Spawned) {
        assert!(exit(&mut spawned.child).await.success());
    }

    /// Waits until this process has one container made ahead, made (the spawner thread
    /// no longer waits for it), and returns its C and init. Every plugin started before
    /// must have ended: a C whose plugin has ended and whose init is about to is taken
    /// for a container ([`waiting_containers`]).
    fn wait_for_a_container() -> [u32; 2] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting = waiting_containers();
            if let [container] = waiting[..]
                && made(container)
            {
                return container;
            }
            assert!(std::time::Instant::now() < deadline, "{waiting:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether a container's C and init have closed their copies of the supervisor's
    /// descriptors, which the spawner thread's fork waits for: C keeps only its end of
    /// the socket to the init, and the init sheds the supervisor's memory (the heap
    /// among it) only after its own descriptors. A container stopped before that
    /// would hold the spawner thread in its fork, and its init would not yet die with
    /// C.
    fn made([c, init]: [u32; 2]) -> bool {
        let descriptors = std::fs::read_dir(format!("/proc/{c}/fd")).map_or(0, Iterator::count);
        let heap = std::fs::read_to_string(format!("/proc/{init}/maps")).map_or(true, |maps| {
            maps.lines().any(|line| line.ends_with("[heap]"))
        });
        descriptors == 1 && !heap
    }

    /// The C and init pairs of this process's containers made ahead: children of this
    /// process whose only child has none.
    fn waiting_containers() -> Vec<[u32; 2]> {
        let children = |pid: u32| -> Vec<u32> {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
                .flat_map(|text| {
                    text.split_whitespace()
                        .filter_map(|pid| pid.parse().ok())
                        .collect::<Vec<u32>>()
                })
                .collect()
        };
        children(std::process::id())
            .into_iter()
            .filter_map(|c| match children(c)[..] {
                [init] if children(init).is_empty() => Some([c, init]),
                _ => None,
            })
            .collect()
    }

    /// A container waiting for a plugin holds no descriptor of the supervisor's: a
    /// plugin started before it still sees its stdin end when the supervisor closes it.
    #[tokio::test]
    async fn a_container_made_ahead_holds_no_other_plugins_pipe() {
        let spawners = spawners().await;
        let Some(spawner) = &spawners.ahead else {
            eprintln!("namespaces are unavailable here; nothing to check");
            return;
        };
        for how in [How::Direct, How::Contained] {
            let request = request(how != How::Direct, "cat >/dev/null; echo closed");
            let mut first = start(spawner, request).await.unwrap();
            // A start made ahead (its container made while the first plugin's pipes
            // were open), and another container made after it, waiting.
            let _second = spawn_as(&spawners, How::Ahead, "read line").await;
            let (stdin, mut stdout, _stderr) = first.child.take_streams().unwrap();
            drop(stdin);
            let mut text = String::new();
            tokio::time::timeout(
                Duration::from_secs(20),
                tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text),
            )
            .await
            .expect("the first plugin saw its stdin end")
            .unwrap();
            assert_eq!(text.trim(), "closed", "{how:?}");
            assert!(exit(&mut first.child).await.success());
        }
    }

    #[tokio::test]
    async fn c_and_the_init_drop_their_copy_of_the_supervisors_heap() {
        let spawners = spawners().await;
        if spawners.ahead.is_none() {
            eprintln!("namespaces are unavailable here; nothing to check");
            return;
        }
        let has_heap = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/maps"))
                .unwrap()
                .lines()
                .any(|line| line.ends_with("[heap]"))
        };
        assert!(has_heap(std::process::id()), "the supervisor has a heap");
        for how in [How::Contained, How::Ahead] {
            c_drops_the_heap(&spawners, how, &has_heap).await;
        }
    }

    async fn c_drops_the_heap(spawners: &Spawners, how: How, has_heap: &dyn Fn(u32) -> bool) {
        let mut spawned = spawn_as(spawners, how, "read line; exit 0").await;
        let leader = spawned.child.id();
        let maps = || std::fs::read_to_string(format!("/proc/{leader}/maps")).unwrap();
        if how == How::Ahead {
            // Dropped before it waited for a plugin: already gone; and the plan's
            // region once the plugin runs.
            assert!(!has_heap(leader), "C still maps a heap");
            assert!(!maps().contains("/dev/zero"), "{}", maps());
        }
        // C sheds its copy right after the init's report, which the spawn waited for,
        // in address order (the heap, then the stack); let it get to the end. Nor may it
        // keep the main thread's stack, which holds the supervisor's environment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while has_heap(leader) || maps().contains("[stack]") {
            assert!(
                std::time::Instant::now() < deadline,
                "{how:?}: C still maps a heap or the main thread's stack: {}",
                maps()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (stdin, _stdout, _stderr) = spawned.child.take_streams().unwrap();
        drop(stdin);
        let status = ExitDescription::from_status(exit(&mut spawned.child).await);
        assert_eq!(status.text, "exit status 0", "C relays the exit as before");
    }

    #[tokio::test]
    async fn the_reported_pid_is_the_plugin_and_the_group_stops_it() {
        let spawners = spawners().await;
        if spawners.ahead.is_none() {
            eprintln!("namespaces are unavailable here; nothing to check");
            return;
        }
        for how in [How::Contained, How::Ahead] {
            the_group_stops(&spawners, how).await;
        }
    }

    async fn the_group_stops(spawners: &Spawners, how: How) {
        let mut spawned = spawn_as(spawners, how, "exec sleep 30").await;
        assert_eq!(spawned.isolation.containment, Containment::Namespaces);
        let leader = spawned.child.id();
        assert_ne!(spawned.pid, leader, "C is not the plugin");
        // The shell replaces itself with `sleep` in its own time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", spawned.pid)).unwrap();
            if cmdline.starts_with(b"sleep\0") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                String::from_utf8_lossy(&cmdline)
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The stop escalation's SIGTERM reaches the plugin through the init, and the
        // plugin's death by it is C's.
        let group = ProcessGroup::new(leader);
        assert!(group.signal(Signal::SIGTERM));
        let status = ExitDescription::from_status(exit(&mut spawned.child).await);
        assert_eq!(status.text, "killed by signal 15 (SIGTERM)");
        group.sweep();
        assert!(!std::path::Path::new(&format!("/proc/{}", spawned.pid)).exists());
    }
}
