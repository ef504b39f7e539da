//! Containment in namespaces: the two processes that stand between the supervisor and
//! a plugin (see the parent module's docs for the picture and the reasons).
//!
//! Everything here runs between `fork` and `exec` in a child of a multi-threaded
//! process, so it is written with async-signal-safe system calls only: no allocation,
//! no locks, no formatting. What it needs (the user namespace's maps) is computed in
//! the parent by [`Namespaces::new`].

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::libc::{self, c_int, pid_t};
use nix::unistd::{getegid, geteuid};

/// The signals the plugin's init passes on to the plugin's process group: what an
/// operator or the supervisor sends to ask a process to stop or to act.
const FORWARDED: [c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// A step of containment, for the probe's explanations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `unshare` of the user, PID and mount namespaces.
    Unshare = 1,
    /// Writing `deny` to `/proc/self/setgroups`.
    SetGroups,
    /// Writing `/proc/self/uid_map`.
    UidMap,
    /// Writing `/proc/self/gid_map`.
    GidMap,
    /// Making every mount private, so nothing propagates back to the host.
    PrivateMounts,
    /// The pipe between the init and its parent.
    Pipe,
    /// Forking the init.
    ForkInit,
    /// Mounting the private `/proc`.
    MountProc,
    /// Starting the plugin's process.
    ForkPlugin,
    /// The init ended before saying how its start went.
    InitLost,
    /// Confining the plugin's process or running its program (`exec`).
    ExecPlugin,
}

impl Step {
    pub(crate) fn from_code(code: u32) -> Self {
        match code {
            1 => Self::Unshare,
            2 => Self::SetGroups,
            3 => Self::UidMap,
            4 => Self::GidMap,
            5 => Self::PrivateMounts,
            6 => Self::Pipe,
            7 => Self::ForkInit,
            8 => Self::MountProc,
            9 => Self::ForkPlugin,
            11 => Self::ExecPlugin,
            _ => Self::InitLost,
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Unshare => "creating the namespaces (unshare)",
            Self::SetGroups => "writing /proc/self/setgroups",
            Self::UidMap => "writing /proc/self/uid_map",
            Self::GidMap => "writing /proc/self/gid_map",
            Self::PrivateMounts => "making the mounts private",
            Self::Pipe => "creating a pipe",
            Self::ForkInit => "forking the namespace's init",
            Self::MountProc => "mounting a private /proc",
            Self::ForkPlugin => "starting the plugin's process",
            Self::InitLost => "waiting for the namespace's init",
            Self::ExecPlugin => "starting the plugin's program",
        }
    }
}

/// Where containment failed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure {
    pub(crate) step: Step,
    pub(crate) errno: Errno,
}

/// How the init starts the plugin's process.
#[derive(Clone, Copy)]
pub(crate) struct Start<'a> {
    /// What the plugin's process runs: it must `exec` the plugin or return the errno
    /// of what failed. Its argument is the Landlock ruleset's descriptor that came
    /// with the word to start, for a container made ahead (`None` otherwise, or when
    /// none came).
    pub(crate) plugin: &'a dyn Fn(Option<c_int>) -> Errno,
    /// `None`: the plugin's process starts at once. `Some`: the container is made
    /// ahead of any plugin ([`Waiting`]).
    pub(crate) ahead: Option<Waiting>,
}

/// A container made ahead of any plugin: C and the init drop everything they hold of
/// the supervisor's (descriptors and anonymous memory) at once, and the init waits on
/// `socket` for the word to start (one byte, with the ruleset's descriptor attached),
/// then unmaps `region` (where the plan was) once the plugin runs, and reports how the
/// start went on `socket` as well as to C. The supervisor closing its end first makes the init and C
/// end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiting {
    pub(crate) socket: c_int,
    /// The start and length of the plan's region.
    pub(crate) region: (usize, usize),
}

/// The namespaces to enter, prepared in the parent.
#[derive(Debug)]
pub(crate) struct Namespaces {
    /// The maps of a new user namespace (`None` when the supervisor is root and needs
    /// none): the current uid and gid, mapped to themselves.
    maps: Option<(Vec<u8>, Vec<u8>)>,
    /// Whether to mount a private `/proc` (the probe found it possible).
    private_proc: bool,
}

impl Namespaces {
    pub(crate) fn new(user_namespace: bool, private_proc: bool) -> Self {
        let maps = user_namespace.then(|| {
            let (uid, gid) = (geteuid(), getegid());
            (
                format!("{uid} {uid} 1\n").into_bytes(),
                format!("{gid} {gid} 1\n").into_bytes(),
            )
        });
        Self { maps, private_proc }
    }

    /// Called in a child of the supervisor (C). Starts the plugin's process (G) as
    /// `start` says. Returns in C only, when containment or the plugin's start failed
    /// (made ahead, only when the container could not be made: C then exits by itself
    /// when no plugin comes or its start fails); C and the init otherwise never
    /// return: they exit as the plugin did.
    pub(crate) fn enter(&self, start: Start<'_>) -> Failure {
        match self.contain(start) {
            Err(failure) => failure,
        }
    }

    fn contain(&self, start: Start<'_>) -> Result<std::convert::Infallible, Failure> {
        block_signals(libc::SIG_SETMASK);
        // C waits for the init, and the init for the plugin: neither could if SIGCHLD
        // were ignored (the kernel would reap the children itself).
        set_default(libc::SIGCHLD);
        // IPC too: System V shared memory, semaphores and message queues, and POSIX
        // message queues, are then the plugin's own, and end with it.
        let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC;
        if self.maps.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        // SAFETY: plain system call.
        step(unsafe { libc::unshare(flags) }, Step::Unshare)?;
        if let Some((uid_map, gid_map)) = &self.maps {
            // A process writes its own maps only while dumpable: the kernel hands the
            // /proc files of a non-dumpable process to root. Dumpable for these three
            // writes only (see the parent module's caveats).
            set_dumpable(true);
            let written = write_file(c"/proc/self/setgroups", b"deny", Step::SetGroups)
                .and_then(|()| write_file(c"/proc/self/uid_map", uid_map, Step::UidMap))
                .and_then(|()| write_file(c"/proc/self/gid_map", gid_map, Step::GidMap));
            set_dumpable(false);
            written?;
        }
        // SAFETY: plain system call with static strings or null pointers.
        step(
            unsafe {
                libc::mount(
                    ptr::null(),
                    c"/".as_ptr(),
                    ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    ptr::null(),
                )
            },
            Step::PrivateMounts,
        )?;
        let mut ends = [0 as c_int; 2];
        // SAFETY: `ends` has room for the two descriptors.
        step(
            unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
            Step::Pipe,
        )?;
        let [from_init, to_parent] = ends;
        // The init shares this process's memory (no copy of the supervisor's address
        // space is made for it): it runs on a stack of its own and writes nothing else
        // of C's, and C writes nothing of the init's.
        // Opened now: once the init has mounted the namespace's `/proc`, C (which has no
        // pid in it) can no longer name itself there.
        // SAFETY: a static path.
        let maps = unsafe {
            libc::open(
                c"/proc/self/maps".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        let private_proc = self.private_proc;
        let here = 0_u8;
        let c_stack = std::ptr::from_ref(&here) as usize;
        let init: &dyn Fn() = &|| {
            close(from_init);
            if start.ahead.is_none() {
                close(maps);
            }
            init(private_proc, to_parent, start, maps, c_stack);
        };
        let (init_pid, init_stack) = spawn_sharing_memory(&init, Sharing::Alongside);
        if init_pid == -1 {
            let errno = Errno::last();
            close(from_init);
            close(to_parent);
            close(maps);
            return Err(Failure {
                step: Step::ForkInit,
                errno,
            });
        }
        close(to_parent);
        if start.ahead.is_some() {
            // Made ahead: nothing of the supervisor's is kept while waiting for a
            // plugin (the init drops the memory, which it shares).
            close_all_but(&[from_init]);
            // Returns only when no plugin came or its start failed, which the
            // supervisor heard from the init: nothing to tell `Command`, whose pipe is
            // closed already.
            relay(init_pid, from_init, -1, init_stack);
            exit(1);
        }
        Err(relay(init_pid, from_init, maps, init_stack))
    }
}

/// The namespace's init (I, PID 1): mounts `/proc`, starts the plugin's process (as
/// `start` says), then reaps and forwards signals until the plugin's process ends,
/// and exits (which kills everything left in the namespace). `maps` is C's
/// `/proc/self/maps` (or -1) and `c_stack` an address in C's stack, for a container
/// made ahead.
fn init(private_proc: bool, to_parent: c_int, start: Start<'_>, maps: c_int, c_stack: usize) -> ! {
    // Dies with C, whose death kills this namespace: armed, then a check that C did not
    // die before (the pipe's reading end is C's alone).
    // SAFETY: plain system calls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
    if reader_gone(to_parent) {
        exit(1);
    }
    if private_proc {
        // SAFETY: static strings.
        let mounted = unsafe {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                ptr::null(),
            )
        };
        if mounted != 0 {
            report_setup(to_parent, Step::MountProc as u32, Errno::last() as u32);
            exit(1);
        }
    }
    let mut ruleset = None;
    if let Some(Waiting { socket, .. }) = start.ahead {
        // Nothing of the supervisor's while waiting: its descriptors (other plugins'
        // pipes among them, whose ends must close when the supervisor closes them),
        // then its memory (C's and this process's stacks kept; C waits on its own).
        close_all_but(&[0, 1, 2, to_parent, socket, maps]);
        let here = 0_u8;
        shed_memory(maps, [std::ptr::from_ref(&here) as usize, c_stack]);
        close(maps);
        match receive_start(socket) {
            Ok(fd) => ruleset = fd,
            // The supervisor gave it up: no plugin comes.
            Err(_) => exit(1),
        }
    }
    let report = |code: u32, errno: u32| {
        report_setup(to_parent, code, errno);
        if let Some(waiting) = start.ahead {
            report_setup(waiting.socket, code, errno);
        }
    };
    // The plugin's process shares the init's memory until its `exec` (the init waits
    // meanwhile): nothing of the supervisor's address space is copied for it. It
    // writes only its own stack and `failed`.
    let failed = AtomicI32::new(0);
    let plugin: &dyn Fn() = &|| {
        close(to_parent);
        failed.store((start.plugin)(ruleset) as c_int, Ordering::SeqCst);
    };
    let (pid, _) = spawn_sharing_memory(&plugin, Sharing::UntilExec);
    if pid == -1 {
        report(Step::ForkPlugin as u32, Errno::last() as u32);
        exit(1);
    }
    let errno = failed.load(Ordering::SeqCst);
    if errno != 0 {
        reap(pid);
        report(Step::ExecPlugin as u32, errno.cast_unsigned());
        exit(1);
    }
    // The plugin's process made itself the leader of its group before its `exec`.
    // The supervisor hears it first, on the socket the next line closes, once the
    // plan's region (no longer read) is gone.
    if let Some(Waiting {
        socket,
        region: (at, len),
    }) = start.ahead
    {
        // SAFETY: the region mapped for this container; the plugin's process, the
        // only reader, has executed its program.
        unsafe {
            libc::munmap(at as *mut libc::c_void, len);
        }
        report_setup(socket, 0, 0);
    }
    close_all_but(&[to_parent]);
    report_setup(to_parent, 0, 0);
    serve(pid, to_parent)
}

/// Waits on `socket` for the word to start a container made ahead, and returns the
/// Landlock ruleset's descriptor attached to it, if any. An error when the supervisor
/// closed its end (or sent nothing readable) instead.
fn receive_start(socket: c_int) -> Result<Option<c_int>, Errno> {
    // Room for one descriptor's control message, aligned as `cmsghdr` needs.
    #[repr(C, align(8))]
    struct Control([u8; 64]);
    let mut byte = 0_u8;
    let mut control = Control([0; 64]);
    let mut part = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is valid; its buffers are set below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &raw mut part;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = control.0.len() as _;
    loop {
        // SAFETY: `message` points at live buffers of the sizes it gives.
        let n = unsafe { libc::recvmsg(socket, &raw mut message, libc::MSG_CMSG_CLOEXEC) };
        match n {
            1 => break,
            0 => return Err(Errno::EPIPE),
            _ if Errno::last() == Errno::EINTR => {}
            _ => return Err(Errno::last()),
        }
    }
    // SAFETY: walks the control messages the kernel wrote into `control`.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&raw const message);
        if !header.is_null()
            && (*header).cmsg_level == libc::SOL_SOCKET
            && (*header).cmsg_type == libc::SCM_RIGHTS
        {
            return Ok(Some(ptr::read_unaligned(
                libc::CMSG_DATA(header).cast::<c_int>(),
            )));
        }
    }
    Ok(None)
}

/// How long a process started by [`spawn_sharing_memory`] shares its parent's memory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// Until it calls `exec` (or ends), with its parent waiting meanwhile
    /// (`CLONE_VFORK`, as `posix_spawn` does).
    UntilExec,
    /// For its whole life, both running: the parent must not return from the frame
    /// that holds what the child uses.
    Alongside,
}

/// Starts a process that runs `child` on a stack of its own while sharing this
/// process's memory (`CLONE_VM`: nothing is copied), and returns its pid (with
/// [`Sharing::UntilExec`], once it has called `exec` or ended; -1 when it could not
/// be started) and, with [`Sharing::Alongside`], an address in its stack. The process
/// ends with status 127 if `child` returns.
///
/// `child` must make async-signal-safe calls only and write no memory but its own
/// stack and what it was given for that; it (and what it refers to) must outlive the
/// child's use of it: with [`Sharing::Alongside`], the caller must not return while
/// the child runs. The child's stack is left mapped with [`Sharing::Alongside`] (it is
/// the child's until it ends, and C ends after it).
pub(crate) fn spawn_sharing_memory(child: &&dyn Fn(), sharing: Sharing) -> (pid_t, usize) {
    const STACK: usize = 256 * 1024;
    extern "C" fn trampoline(child: *mut libc::c_void) -> c_int {
        // SAFETY: the pointer below, to the caller's `&dyn Fn()`, which outlives the
        // child's use of it (see above).
        let child = unsafe { *child.cast::<&dyn Fn()>() };
        child();
        exit(127)
    }
    // SAFETY: an anonymous private mapping.
    let stack = unsafe {
        libc::mmap(
            ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return (-1, 0);
    }
    // SAFETY: the lowest page of the mapping becomes a guard page: an overflow faults
    // instead of writing past the stack.
    unsafe {
        libc::mprotect(stack, 4096, libc::PROT_NONE);
    }
    let mut flags = libc::CLONE_VM | libc::SIGCHLD;
    if sharing == Sharing::UntilExec {
        flags |= libc::CLONE_VFORK;
    }
    // SAFETY: the stack grows down from the end of the mapping; SIGCHLD makes it an
    // ordinary child to wait for; what `child` refers to outlives it (see above).
    let pid = unsafe {
        libc::clone(
            trampoline,
            stack.cast::<u8>().add(STACK).cast(),
            flags,
            std::ptr::from_ref::<&dyn Fn()>(child).cast_mut().cast(),
        )
    };
    if sharing == Sharing::UntilExec || pid == -1 {
        // SAFETY: no process uses the stack any more.
        unsafe {
            libc::munmap(stack, STACK);
        }
        return (pid, 0);
    }
    (pid, stack as usize + STACK - 1)
}

/// The init's loop: reap every child (orphans are reparented here), forward stop
/// signals to the plugin's process group, and when the plugin's process ends, send its
/// wait status to C and exit.
fn serve(plugin: pid_t, to_parent: c_int) -> ! {
    let all = full_set();
    loop {
        loop {
            let mut status: c_int = 0;
            // SAFETY: plain system call.
            let pid = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG | libc::__WALL) };
            if pid == plugin {
                write_all(to_parent, &status.to_ne_bytes());
                exit(0);
            }
            if pid <= 0 {
                break;
            }
        }
        let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
        // SAFETY: every signal is blocked, so they queue here until taken.
        let signal = unsafe { libc::sigwaitinfo(&raw const all, info.as_mut_ptr()) };
        if FORWARDED.contains(&signal) {
            // SAFETY: plain system calls.
            unsafe {
                if libc::kill(-plugin, signal) != 0 {
                    libc::kill(plugin, signal);
                }
            }
        }
    }
}

/// C, once the init is started: waits for the init's report, then for the plugin's
/// wait status, and ends the same way the plugin did. `maps` is C's
/// `/proc/self/maps` (or -1), `init_stack` an address in the init's stack.
fn relay(init: pid_t, from_init: c_int, maps: c_int, init_stack: usize) -> Failure {
    let mut setup = [0_u8; 8];
    if !read_exact(from_init, &mut setup) {
        close(maps);
        reap(init);
        return Failure {
            step: Step::InitLost,
            errno: Errno::ECHILD,
        };
    }
    if let Some(failure) = setup_failure(setup) {
        close(maps);
        reap(init);
        return failure;
    }
    // The plugin runs. C keeps nothing of the supervisor's: not its memory (see
    // `shed_memory`), not its descriptors (other plugins' pipes among them), nor the
    // plugin's standard streams.
    // The descriptors first: the supervisor's spawn returns once C's copy of its
    // exec-error pipe is closed, and need not wait for the memory.
    if maps < 0 {
        close_all_but(&[from_init]);
    } else {
        close_all_but(&[from_init, maps]);
        let here = 0_u8;
        shed_memory(maps, [std::ptr::from_ref(&here) as usize, init_stack]);
        close(maps);
    }
    let mut word = [0_u8; 4];
    let told = read_exact(from_init, &mut word);
    reap(init);
    if told {
        exit_as(c_int::from_ne_bytes(word))
    } else {
        // The init was killed (and with it the plugin).
        die_by(libc::SIGKILL)
    }
}

/// Unmaps C's copies of the supervisor's anonymous memory (its heap, its other
/// threads' stacks and allocations), but for the mappings holding an address of `keep`
/// (C's and the init's stacks) and those that extend a file's mapping (the `.bss` of
/// the program and its libraries). Neither C nor the init needs them once the plugin
/// runs: they only wait, on their stacks, with system calls. Dropped, they no longer
/// make the supervisor's writes copy pages (copy-on-write with C), and C no longer
/// holds the supervisor's secrets or grows with its writes. Reads `maps` (C's
/// `/proc/self/maps`) without allocating; a mapping it cannot parse is kept.
fn shed_memory(maps: c_int, keep: [usize; 2]) {
    const MAX: usize = 1024;
    if maps < 0 {
        return;
    }
    let mut drop = [(0_usize, 0_usize); MAX];
    let mut count = 0;
    let mut buffer = [0_u8; 4096];
    let mut filled = 0;
    // The end of the previous mapping, and whether it was a file's.
    let mut previous = (0_usize, false);
    loop {
        // SAFETY: reads into the unfilled part of `buffer`.
        let n = unsafe {
            libc::read(
                maps,
                buffer[filled..].as_mut_ptr().cast(),
                buffer.len() - filled,
            )
        };
        let Ok(n) = usize::try_from(n) else { break };
        filled += n;
        let mut start = 0;
        while let Some(end) = buffer[start..filled].iter().position(|&b| b == b'\n') {
            let line = &buffer[start..start + end];
            start += end + 1;
            let Some(mapping) = Mapping::parse(line) else {
                previous = (0, true);
                continue;
            };
            let extends_file = previous.1 && previous.0 == mapping.start;
            // `[stack]` is the supervisor's main thread's, which holds its starting
            // environment (secrets passed on to plugins among them): C runs on a copy
            // of the spawner thread's stack, kept through `keep`.
            let anonymous = mapping.inode == 0
                && (mapping.path.is_empty()
                    || mapping.path == b"[heap]"
                    || mapping.path == b"[stack]");
            if anonymous
                && mapping.perms == b"rw-p"
                && !extends_file
                && !keep
                    .iter()
                    .any(|&at| mapping.start <= at && at < mapping.end)
                && count < MAX
            {
                drop[count] = (mapping.start, mapping.end);
                count += 1;
            }
            previous = (mapping.end, mapping.inode != 0);
        }
        buffer.copy_within(start..filled, 0);
        filled -= start;
        if n == 0 || filled == buffer.len() {
            break;
        }
    }
    for &(start, end) in &drop[..count] {
        // SAFETY: a mapping of this process that neither C nor the init uses (above).
        unsafe {
            libc::munmap(start as *mut libc::c_void, end - start);
        }
    }
}

/// One line of `/proc/<pid>/maps`.
struct Mapping<'a> {
    start: usize,
    end: usize,
    perms: &'a [u8],
    inode: u64,
    path: &'a [u8],
}

impl<'a> Mapping<'a> {
    fn parse(line: &'a [u8]) -> Option<Self> {
        let mut fields = line.splitn(6, |&b| b == b' ');
        let range = fields.next()?;
        let dash = range.iter().position(|&b| b == b'-')?;
        let start = hex(&range[..dash])?;
        let end = hex(&range[dash + 1..])?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let _device = fields.next()?;
        let inode = decimal(fields.next()?)?;
        let path = fields.next().unwrap_or_default().trim_ascii();
        Some(Self {
            start,
            end,
            perms,
            inode,
            path,
        })
    }
}

fn hex(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_usize, |value, &b| {
        let digit = (b as char).to_digit(16)?;
        value.checked_mul(16)?.checked_add(digit as usize)
    })
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_u64, |value, &b| {
        let digit = (b as char).to_digit(10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Ends this process with `status`, a wait status: the same exit code, or death by the
/// same signal (without a core file).
pub(crate) fn exit_as(status: c_int) -> ! {
    if libc::WIFEXITED(status) {
        exit(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        die_by(libc::WTERMSIG(status));
    }
    exit(1)
}

fn die_by(signal: c_int) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on values owned here.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &raw const no_core);
        set_default(signal);
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, set.as_ptr(), ptr::null_mut());
        libc::kill(libc::getpid(), signal);
    }
    exit(128 + signal)
}

/// Restores the default action of every signal that has a handler; ignored signals
/// stay ignored, as across `exec`. The plugin's process shares the init's memory (a
/// copy of the supervisor's) until its `exec`: none of the supervisor's handlers may
/// run in it meanwhile.
pub(crate) fn reset_handlers() {
    for signal in 1..=64 {
        let mut action = MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: reads the action into `action`; fails harmlessly for numbers that
        // are not signals (or are glibc's own).
        let read = unsafe { libc::sigaction(signal, ptr::null(), action.as_mut_ptr()) };
        if read != 0 {
            continue;
        }
        // SAFETY: initialized by the successful call above.
        let handler = unsafe { action.assume_init() }.sa_sigaction;
        if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
            set_default(signal);
        }
    }
}

/// Restores the default action of `signal`.
pub(crate) fn set_default(signal: c_int) {
    // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &raw const action, ptr::null_mut());
    }
}

fn set_dumpable(dumpable: bool) {
    // SAFETY: plain system call.
    unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            libc::c_ulong::from(dumpable),
            0,
            0,
            0,
        );
    }
}

/// Blocks (`SIG_SETMASK`) or unblocks (`SIG_UNBLOCK`) every signal.
pub(crate) fn block_signals(how: c_int) {
    let all = full_set();
    // SAFETY: plain system call.
    unsafe {
        libc::sigprocmask(how, &raw const all, ptr::null_mut());
    }
}

fn full_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initializes the set.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// Closes every descriptor but those in `keep` (in any order; negative entries are
/// ignored), the standard streams included unless kept. No allocation.
fn close_all_but(keep: &[c_int]) {
    let mut next = 0;
    while let Some(fd) = keep.iter().copied().filter(|&fd| fd >= next).min() {
        close_range(next, fd - 1, 0);
        next = fd + 1;
    }
    close_range(next, c_int::MAX, 0);
}

/// Closes (or, with `CLOSE_RANGE_CLOEXEC`, marks close-on-exec) descriptors `first`
/// to `last`, with a loop where the kernel predates `close_range` (5.9; 5.11 for the
/// flag).
pub(crate) fn close_range(first: c_int, last: c_int, flags: libc::c_uint) {
    if first > last {
        return;
    }
    #[allow(clippy::cast_sign_loss)] // both are positive
    // SAFETY: plain system call.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            flags,
        )
    };
    if done == 0 {
        return;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system call.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit);
    }
    let end = c_int::try_from(limit.rlim_cur.min(1 << 16)).unwrap_or(1 << 16);
    for fd in first..end.min(last.saturating_add(1)) {
        if flags == libc::CLOSE_RANGE_CLOEXEC {
            // SAFETY: plain system call; a closed descriptor fails harmlessly.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        } else {
            close(fd);
        }
    }
}

fn write_file(path: &CStr, contents: &[u8], at: Step) -> Result<(), Failure> {
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    step(fd, at)?;
    // The kernel wants each map in one write.
    // SAFETY: `contents` is valid for its length.
    let written = unsafe { libc::write(fd, contents.as_ptr().cast(), contents.len()) };
    let errno = Errno::last();
    close(fd);
    if usize::try_from(written).ok() == Some(contents.len()) {
        Ok(())
    } else {
        Err(Failure { step: at, errno })
    }
}

/// What the init's first report says went wrong: `None` when the plugin's process runs.
pub(crate) fn setup_failure(report: [u8; 8]) -> Option<Failure> {
    let code = u32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
    let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
    (code != 0).then(|| Failure {
        step: Step::from_code(code),
        errno: Errno::from_raw(errno),
    })
}

/// The first report from the init: `code` 0 when the plugin's process runs, else the
/// failed [`Step`] and its errno.
fn report_setup(fd: c_int, code: u32, errno: u32) {
    let mut message = [0_u8; 8];
    message[..4].copy_from_slice(&code.to_ne_bytes());
    message[4..].copy_from_slice(&errno.to_ne_bytes());
    write_all(fd, &message);
}

fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(n) => bytes = &bytes[n..],
            Err(_) if Errno::last() == Errno::EINTR => {}
            Err(_) => return,
        }
    }
}

/// Whether `buffer` was filled; `false` at end of file or on error.
fn read_exact(fd: c_int, buffer: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: `rest` is valid for its length.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(0) => return false,
            Ok(n) => filled += n,
            Err(_) if Errno::last() == Errno::EINTR => {}
            Err(_) => return false,
        }
    }
    true
}

/// Whether the reading end of the pipe `fd` writes to is closed (its reader died).
fn reader_gone(fd: c_int) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let ready = unsafe { libc::poll(&raw mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLERR != 0
}

pub(crate) fn reap(pid: pid_t) {
    let mut status: c_int = 0;
    // SAFETY: plain system call.
    while unsafe { libc::waitpid(pid, &raw mut status, libc::__WALL) } == -1
        && Errno::last() == Errno::EINTR
    {}
}

fn close(fd: c_int) {
    // SAFETY: closing a descriptor this process owns (or none: EBADF is harmless).
    unsafe {
        libc::close(fd);
    }
}

fn exit(code: c_int) -> ! {
    // SAFETY: `_exit` skips atexit handlers and stdio flushing, which belong to the
    // supervisor.
    unsafe { libc::_exit(code) }
}

fn step(result: c_int, at: Step) -> Result<c_int, Failure> {
    if result == -1 {
        Err(Failure {
            step: at,
            errno: Errno::last(),
        })
    } else {
        Ok(result)
    }
}
