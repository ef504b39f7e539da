//! What this host offers plugins, found once: the kernel's Landlock ABI, and whether
//! the namespaces and the private `/proc` of [`contain`](super::contain) work here, by
//! trying them in a short-lived child (user namespaces may be compiled in yet refused
//! by a sysctl, an AppArmor policy or a container's seccomp filter: only trying tells).

use std::sync::OnceLock;

use nix::errno::Errno;
use nix::libc::{self, c_int};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, geteuid};

use super::contain::{Namespaces, Start, Step};
use super::fs_sandbox::FULL_ABI;
use crate::isolation::{Containment, FilesystemSandbox, HostIsolation, Support};

/// The host's isolation, probed on first use.
pub(crate) fn host() -> &'static HostIsolation {
    static HOST: OnceLock<HostIsolation> = OnceLock::new();
    HOST.get_or_init(probe)
}

fn probe() -> HostIsolation {
    let running_as_root = geteuid().is_root();
    let (namespaces, private_proc) = try_namespaces(running_as_root);
    let landlock_abi = landlock_abi();
    let (filesystem, filesystem_detail) = match landlock_abi {
        Err(errno) => (
            FilesystemSandbox::Unavailable,
            Some(format!(
                "the kernel has no Landlock ({}): {}",
                errno.desc(),
                if errno == Errno::EOPNOTSUPP {
                    "it is built in but not enabled; add landlock to the lsm= boot parameter"
                } else {
                    "Linux 5.13 or later built with CONFIG_SECURITY_LANDLOCK is needed"
                }
            )),
        ),
        Ok(abi) if abi < FULL_ABI => (FilesystemSandbox::Partial, Some(partial_detail(abi))),
        Ok(_) => (FilesystemSandbox::Enforced, None),
    };
    HostIsolation {
        running_as_root,
        containment: if namespaces.available {
            Containment::Namespaces
        } else {
            Containment::ProcessGroup
        },
        namespaces,
        private_proc,
        landlock_abi: landlock_abi.ok(),
        filesystem,
        filesystem_detail,
    }
}

/// What a kernel below [`FULL_ABI`] leaves unrestricted.
pub(crate) fn partial_detail(abi: u32) -> String {
    let mut missing = Vec::new();
    if abi < 2 {
        missing.push("moving files between directories (refused outright instead)");
    }
    if abi < 3 {
        missing.push("truncating files");
    }
    if abi < 5 {
        missing.push("ioctl on devices");
    }
    format!(
        "the kernel's Landlock ABI is {abi}, below {FULL_ABI}: {} not restricted",
        missing.join(", ")
    )
}

/// The kernel's Landlock ABI version, or why there is none.
fn landlock_abi() -> Result<u32, Errno> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query: no attributes, no size.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0_usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version < 0 {
        Err(Errno::last())
    } else {
        u32::try_from(version).map_err(|_| Errno::EINVAL)
    }
}

/// Tries the namespaces (and a private `/proc`) in a child, as a plugin's start would:
/// (namespaces, private /proc).
fn try_namespaces(running_as_root: bool) -> (Support, Support) {
    let namespaces = Namespaces::new(!running_as_root, true);
    let Ok((report, write_end)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return (
            Support::no("could not make a pipe to probe the namespaces"),
            Support::no("the namespaces were not probed"),
        );
    };
    // SAFETY: the child makes only async-signal-safe calls (`enter` is written for a
    // child of a multi-threaded process) and ends with `_exit`.
    match unsafe { fork() } {
        Err(errno) => (
            Support::no(format!(
                "could not fork to probe the namespaces ({})",
                errno.desc()
            )),
            Support::no("the namespaces were not probed"),
        ),
        Ok(ForkResult::Child) => {
            drop(report);
            // The plugin's place: nothing to run. `enter` returns only on failure.
            // SAFETY: ends the plugin's process without running the parent's exit
            // handlers.
            let failure = namespaces.enter(Start {
                plugin: &|_| unsafe { libc::_exit(0) },
                ahead: None,
            });
            let mut message = [0_u8; 8];
            message[..4].copy_from_slice(&(failure.step as u32).to_ne_bytes());
            message[4..].copy_from_slice(&(failure.errno as i32).to_ne_bytes());
            // SAFETY: a valid buffer; then ends the child without running the parent's
            // exit handlers.
            unsafe {
                libc::write(
                    std::os::fd::AsRawFd::as_raw_fd(&write_end),
                    message.as_ptr().cast(),
                    message.len(),
                );
                libc::_exit(1)
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            let mut message = [0_u8; 8];
            let read = read_report(&report, &mut message);
            let status = loop {
                match waitpid(child, None) {
                    Err(Errno::EINTR) => {}
                    other => break other,
                }
            };
            if read == message.len() {
                let step = u32::from_ne_bytes([message[0], message[1], message[2], message[3]]);
                let errno = Errno::from_raw(c_int::from_ne_bytes([
                    message[4], message[5], message[6], message[7],
                ]));
                return failed(step, errno, running_as_root);
            }
            match status {
                Ok(WaitStatus::Exited(_, 0)) => (Support::yes(), Support::yes()),
                other => (
                    Support::no(format!(
                        "the probe of the namespaces ended unexpectedly ({other:?})"
                    )),
                    Support::no("the namespaces were not probed"),
                ),
            }
        }
    }
}

fn read_report(report: &std::os::fd::OwnedFd, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match nix::unistd::read(report, &mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    filled
}

/// The probe's verdict when `step` failed with `errno`.
fn failed(step: u32, errno: Errno, running_as_root: bool) -> (Support, Support) {
    let step = Step::from_code(step);
    let why = format!("{} failed: {}", step.describe(), errno.desc());
    if step == Step::MountProc {
        return (
            Support::yes(),
            Support::no(format!(
                "{why}; the host's /proc is not fully visible here (a container masks part of it?), so plugins see the host's processes in /proc"
            )),
        );
    }
    let advice = if running_as_root {
        "the supervisor needs CAP_SYS_ADMIN (a container may withhold it)"
    } else {
        "unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone or user.max_user_namespaces) or restricted (AppArmor's kernel.apparmor_restrict_unprivileged_userns)"
    };
    (
        Support::no(format!("{why}; {advice}")),
        Support::no("needs the namespaces"),
    )
}
