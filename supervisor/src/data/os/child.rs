//! The process the supervisor reaps and signals, however it was started.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// A plugin's standard streams, seen from the supervisor.
pub(crate) type Streams = (
    Box<dyn AsyncWrite + Unpin + Send>,
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncRead + Unpin + Send>,
);

/// The process the supervisor reaps and signals: the plugin itself, or C when it is
/// contained. It leads the process group.
#[derive(Debug)]
pub(crate) enum Child {
    /// Started by `Command` (a `fork`): C of a contained plugin, or a plugin where
    /// process descriptors are missing.
    Forked(tokio::process::Child),
    /// Started sharing the supervisor's memory until its `exec` (see
    /// [`super::spawn_plugin`]), waited for through a process descriptor.
    Shared(SharedChild),
}

impl Child {
    /// The process's pid.
    pub(crate) fn id(&self) -> u32 {
        match self {
            Self::Forked(child) => child.id().expect("a child not yet waited for has a pid"),
            Self::Shared(child) => child.pid,
        }
    }

    /// Its standard streams (stdin, stdout, stderr), the first time.
    pub(crate) fn take_streams(&mut self) -> Option<Streams> {
        match self {
            Self::Forked(child) => {
                let (Some(stdin), Some(stdout), Some(stderr)) =
                    (child.stdin.take(), child.stdout.take(), child.stderr.take())
                else {
                    return None;
                };
                Some((Box::new(stdin), Box::new(stdout), Box::new(stderr)))
            }
            Self::Shared(child) => {
                let (stdin, stdout, stderr) = child.streams.take()?;
                Some((Box::new(stdin), Box::new(stdout), Box::new(stderr)))
            }
        }
    }

    /// Waits for the process to end and reaps it (cancel-safe; once reaped, returns
    /// the same status again).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Self::Forked(child) => child.wait().await,
            Self::Shared(child) => child.wait().await,
        }
    }
}

/// A child waited for through its process descriptor (`pidfd`), readable once it
/// has ended.
#[derive(Debug)]
pub(crate) struct SharedChild {
    pid: u32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    streams: Option<(pipe::Sender, pipe::Receiver, pipe::Receiver)>,
}

impl SharedChild {
    /// The child `pid`, not yet reaped; the three descriptors are the supervisor's ends
    /// of its stdin, stdout and stderr pipes. Must be called within a tokio runtime.
    pub(crate) fn new(
        pid: u32,
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> io::Result<Self> {
        let pidfd = pidfd_open(pid)?;
        // SAFETY: an `OwnedFd`, whose descriptor stays open and the same while owned.
        let pidfd =
            unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
                .map_err(io::Error::from)?;
        Ok(Self {
            pid,
            pidfd: Some(pidfd),
            status: None,
            streams: Some((
                pipe::Sender::from_owned_fd(stdin)?,
                pipe::Receiver::from_owned_fd(stdout)?,
                pipe::Receiver::from_owned_fd(stderr)?,
            )),
        })
    }

    async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let pidfd = self.pidfd.as_ref().expect("kept until the drop");
            let mut ready = pidfd.readable().await?;
            if let Some(status) = reap(pidfd.get_ref())? {
                self.status = Some(status);
            } else {
                ready.clear_ready();
            }
        }
    }
}

/// A process descriptor of `pid`.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; a descriptor it returns is this process's to own.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).expect("descriptors fit in i32")) })
}

/// Whether this kernel lets children be waited for through process descriptors
/// (`pidfd_open`, Linux 5.3, and `waitid(P_PIDFD)`, 5.4), probed once: without them,
/// plugins are started with `Command`.
pub(crate) fn process_descriptors() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let Ok(own) = pidfd_open(std::process::id()) else {
            return false;
        };
        // Not a child of its own: ECHILD where `P_PIDFD` is known, EINVAL where not.
        matches!(
            waitid(
                Id::PIDFd(own.as_fd()),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG
            ),
            Err(Errno::ECHILD)
        )
    })
}

/// A pipe whose two ends are close-on-exec and above the standard streams (so that
/// moving a child's end onto 0, 1 or 2 never overwrites another).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let above = |fd: OwnedFd| -> io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            return Ok(fd);
        }
        Ok(nix::fcntl::fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3))
            // SAFETY: a descriptor just duplicated and owned by no one else.
            .map(|dup| unsafe { OwnedFd::from_raw_fd(dup) })?)
    };
    Ok((above(read)?, above(write)?))
}

/// The child's exit status if it has ended (reaping it), `None` if it runs.
fn reap(pidfd: &OwnedFd) -> io::Result<Option<ExitStatus>> {
    loop {
        return match waitid(
            Id::PIDFd(pidfd.as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::from_raw((code & 0xff) << 8))),
            Ok(WaitStatus::Signaled(_, signal, core)) => Ok(Some(ExitStatus::from_raw(
                signal as i32 | if core { 0x80 } else { 0 },
            ))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(errno.into()),
        };
    }
}

impl Drop for SharedChild {
    /// A child dropped before it was reaped (the last resort: its process group is
    /// killed by `ProcessGroup`'s drop) is reaped in the background, as `Command`'s
    /// children are, so that no zombie is left.
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let Some(pidfd) = self.pidfd.take() else {
            return;
        };
        if matches!(reap(pidfd.get_ref()), Ok(Some(_))) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                while let Ok(mut ready) = pidfd.readable().await {
                    match reap(pidfd.get_ref()) {
                        Ok(None) => ready.clear_ready(),
                        _ => return,
                    }
                }
            });
        }
    }
}
