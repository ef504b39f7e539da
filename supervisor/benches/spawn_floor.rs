//! The floor under a contained spawn: how long the benches' SDK plugin takes from its
//! spawn to `initialize` answered when the process starting it is nothing but this
//! loop (one thread, a few MiB, no supervisor), three ways, in alternating rounds:
//!
//! - **`posix_spawn`** (std's `Command`): the raw spawn of `data_plane -- spawn`;
//! - **Outpost's shape**: C forked; C unshares the PID, mount and IPC namespaces (and
//!   the user namespace when not root, with its maps), makes every mount private and forks
//!   I; I, PID 1 of the new namespace, mounts a private `/proc` and starts the plugin
//!   sharing its memory until the `exec` (`CLONE_VM | CLONE_VFORK`);
//! - **the least a PID namespace needs**: the init cloned straight into the new
//!   namespaces (no C), then the same.
//!
//! No Landlock, no limits, no descriptors to close, no supervisor: what is left is the
//! kernel's share and the process chain's. docs/performance.md sets it beside the
//! supervisor's contained spawn, whose C is a fork of the whole supervisor.
//!
//! ```text
//! cargo bench -p outpost-supervisor --bench spawn_floor [-- --json]
//! ```

#![allow(unsafe_code)]

use std::ffi::{CString, c_int, c_void};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::libc;
use serde_json::json;

#[path = "support/report.rs"]
mod report;
#[path = "support/sdk_plugin.rs"]
mod sdk;

use report::Report;

const ROUNDS: usize = 100;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--plugin") {
        return sdk::sdk_plugin("bench".into(), "echo".into(), "crash".into());
    }
    // `cargo test --benches` runs benches with no `--bench`: build, do not measure.
    if !args.iter().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    let mut report = Report::new("spawn_floor", &args);
    if !namespaces_allowed() {
        report.note("spawn floor: this host does not allow PID and mount namespaces here");
        report.finish();
        return ExitCode::SUCCESS;
    }
    let plugin = Prepared::new();
    let shapes = [Shape::PosixSpawn, Shape::Chain, Shape::Init];
    let mut times = vec![Vec::with_capacity(ROUNDS); shapes.len()];
    for _ in 0..ROUNDS {
        for (which, shape) in shapes.iter().enumerate() {
            times[which].push(plugin.spawn(*shape));
        }
    }
    let mut raw = 0.0;
    for (which, shape) in shapes.iter().enumerate() {
        times[which].sort();
        let median = millis(times[which][ROUNDS / 2]);
        let min = millis(times[which][0]);
        if which == 0 {
            raw = median;
        }
        let ratio = median / raw;
        report.add(
            "floor",
            shape.name(),
            &format!(
                "{}: median {median:.3} ms = {ratio:.2}x posix_spawn (+{:.0} us), min {min:.3} ms ({ROUNDS} runs)",
                shape.what(),
                (median - raw) * 1000.0,
            ),
            json!({"medianMs": median, "minMs": min, "runs": ROUNDS,
                   "baseline": "posixSpawn", "ratio": ratio}),
        );
    }
    report.finish();
    ExitCode::SUCCESS
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[derive(Clone, Copy)]
enum Shape {
    PosixSpawn,
    Chain,
    Init,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::PosixSpawn => "posixSpawn",
            Self::Chain => "outpostShape",
            Self::Init => "initCloned",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::PosixSpawn => "posix_spawn, initialize answered",
            Self::Chain => "Outpost's shape (C forked, I, /proc, the plugin), from a small process",
            Self::Init => "the init cloned into new namespaces, /proc, the plugin",
        }
    }
}

/// Whether this process may make PID and mount namespaces (as root, or in a user
/// namespace of its own): tried in a child, which reports by its exit status.
fn namespaces_allowed() -> bool {
    let flags = namespace_flags();
    // SAFETY: the child makes system calls only, then exits.
    match unsafe { libc::fork() } {
        0 => unsafe { libc::_exit(c_int::from(libc::unshare(flags) != 0)) },
        -1 => false,
        child => {
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            unsafe { libc::waitpid(child, &raw mut status, 0) };
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }
}

fn namespace_flags() -> c_int {
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | if root { 0 } else { libc::CLONE_NEWUSER }
}

/// Everything the children need, made before any fork: they only make system calls.
struct Prepared {
    program: CString,
    argv: [*const libc::c_char; 3],
    _strings: Vec<CString>,
    envp: Vec<*const libc::c_char>,
    uid_map: CString,
    gid_map: CString,
    flags: c_int,
    initialize: Vec<u8>,
}

/// What the plugin's process starts from: its standard streams, then the program.
struct Exec<'a> {
    stdin: RawFd,
    stdout: RawFd,
    plugin: &'a Prepared,
}

impl Prepared {
    fn new() -> Self {
        let exe = std::env::current_exe().expect("this bench's own path");
        let program = CString::new(exe.as_os_str().as_bytes()).expect("a path without NUL");
        let flag = CString::new("--plugin").unwrap();
        let strings: Vec<CString> = [
            format!(
                "{}={}",
                outpost_protocol::ENV_PROTOCOL,
                outpost_protocol::PROTOCOL_VERSION
            ),
            format!("{}=bench", outpost_protocol::ENV_PLUGIN_ID),
            "PATH=/usr/bin:/bin".to_owned(),
        ]
        .into_iter()
        .map(|text| CString::new(text).unwrap())
        .chain(std::iter::once(flag))
        .collect();
        let mut envp: Vec<_> = strings[..3].iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        let argv = [program.as_ptr(), strings[3].as_ptr(), std::ptr::null()];
        // SAFETY: plain system calls.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Self {
            program,
            argv,
            _strings: strings,
            envp,
            uid_map: CString::new(format!("{uid} {uid} 1")).unwrap(),
            gid_map: CString::new(format!("{gid} {gid} 1")).unwrap(),
            flags: namespace_flags(),
            initialize: sdk::initialize_line().into_bytes(),
        }
    }

    /// One spawn in `shape`, timed until `initialize` is answered; then the plugin is
    /// told to end (its stdin closed) and waited for, untimed.
    fn spawn(&self, shape: Shape) -> Duration {
        if let Shape::PosixSpawn = shape {
            return self.posix_spawn();
        }
        let (child_stdin, to_child) = pipe();
        let (from_child, child_stdout) = pipe();
        let exec = Exec {
            stdin: child_stdin,
            stdout: child_stdout,
            plugin: self,
        };
        let begin = Instant::now();
        // SAFETY: the children make system calls only (everything was prepared above),
        // and this process has one thread.
        let pid = unsafe {
            match shape {
                Shape::Chain => libc::fork(),
                _ => libc::pid_t::try_from(libc::syscall(
                    libc::SYS_clone,
                    libc::c_ulong::try_from(self.flags | libc::SIGCHLD).unwrap(),
                    0,
                    0,
                    0,
                    0,
                ))
                .unwrap_or(-1),
            }
        };
        if pid == 0 {
            close(to_child);
            close(from_child);
            // SAFETY: see above.
            unsafe {
                match shape {
                    Shape::Chain => chain(&exec),
                    _ => init(&exec, true),
                }
            }
        }
        assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
        close(child_stdin);
        close(child_stdout);
        // SAFETY: the two descriptors are this process's own, owned from here on.
        let (mut input, output) = unsafe {
            (
                std::fs::File::from_raw_fd(to_child),
                std::fs::File::from_raw_fd(from_child),
            )
        };
        let took = handshake(&mut input, output, &self.initialize, begin);
        drop(input);
        let mut status = 0;
        // SAFETY: waits for the child just started.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the contained spawn failed: wait status {status}"
        );
        took
    }

    fn posix_spawn(&self) -> Duration {
        let begin = Instant::now();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--plugin")
            .env_clear()
            .env(
                outpost_protocol::ENV_PROTOCOL,
                outpost_protocol::PROTOCOL_VERSION,
            )
            .env(outpost_protocol::ENV_PLUGIN_ID, "bench")
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the plugin starts");
        let mut input = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let took = handshake(&mut input, output, &self.initialize, begin);
        drop(input);
        assert!(child.wait().unwrap().success());
        took
    }
}

fn handshake(
    input: &mut impl Write,
    output: impl std::io::Read,
    initialize: &[u8],
    begin: Instant,
) -> Duration {
    input.write_all(initialize).unwrap();
    let mut answer = String::new();
    BufReader::new(output).read_line(&mut answer).unwrap();
    let took = begin.elapsed();
    assert!(answer.contains("\"result\""), "initialize: {answer}");
    took
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let done = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(done, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

fn close(fd: RawFd) {
    // SAFETY: plain system call on a descriptor of this process.
    unsafe { libc::close(fd) };
}

/// Ends a child that failed at `step` (its exit code tells the parent's assertion).
fn fail(step: c_int) -> ! {
    // SAFETY: plain system call.
    unsafe { libc::_exit(step) }
}

/// C: new namespaces, then the init, then waits for it.
unsafe fn chain(exec: &Exec<'_>) -> ! {
    // SAFETY: plain system calls.
    unsafe {
        if libc::unshare(exec.plugin.flags) != 0 {
            fail(10);
        }
        set_up(exec.plugin);
        match libc::fork() {
            0 => init(exec, false),
            -1 => fail(11),
            child => {
                let mut status = 0;
                libc::waitpid(child, &raw mut status, 0);
                libc::_exit(libc::WEXITSTATUS(status))
            }
        }
    }
}

/// The init of the new namespaces (their creator when `creator`: it then writes the
/// user namespace's maps and makes the mounts private, as C does in the chain): a private
/// `/proc`, then the plugin, sharing this memory until its `exec`.
unsafe fn init(exec: &Exec<'_>, creator: bool) -> ! {
    const STACK: usize = 64 * 1024;
    // SAFETY: plain system calls on prepared data; the stack is mapped for the plugin's
    // process alone, which runs while this one waits (`CLONE_VFORK`).
    unsafe {
        if creator {
            set_up(exec.plugin);
        }
        let proc_ = c"/proc";
        if libc::mount(
            c"proc".as_ptr(),
            proc_.as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            fail(20);
        }
        let stack = libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if stack == libc::MAP_FAILED {
            fail(21);
        }
        let plugin = libc::clone(
            start_plugin,
            stack.cast::<u8>().add(STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(exec).cast_mut().cast::<c_void>(),
        );
        if plugin < 0 {
            fail(22);
        }
        let mut status = 0;
        libc::waitpid(plugin, &raw mut status, 0);
        libc::_exit(c_int::from(
            !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0,
        ))
    }
}

/// The user namespace's maps and the private mounts, by the namespaces' creator.
unsafe fn set_up(plugin: &Prepared) {
    // SAFETY: plain system calls on prepared data.
    unsafe {
        if plugin.flags & libc::CLONE_NEWUSER != 0 {
            write_file(c"/proc/self/setgroups", b"deny");
            write_file(c"/proc/self/uid_map", plugin.uid_map.as_bytes());
            write_file(c"/proc/self/gid_map", plugin.gid_map.as_bytes());
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            fail(30);
        }
    }
}

unsafe fn write_file(path: &std::ffi::CStr, contents: &[u8]) {
    // SAFETY: plain system calls.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 || libc::write(fd, contents.as_ptr().cast(), contents.len()) < 0 {
            fail(31);
        }
        libc::close(fd);
    }
}

extern "C" fn start_plugin(exec: *mut c_void) -> c_int {
    // SAFETY: `exec` is the `Exec` the init passed, alive while the init waits.
    let exec = unsafe { &*exec.cast::<Exec<'_>>() };
    // SAFETY: plain system calls on prepared data, then `execve` or `_exit`.
    unsafe {
        if libc::dup2(exec.stdin, 0) < 0 || libc::dup2(exec.stdout, 1) < 0 {
            libc::_exit(40);
        }
        libc::execve(
            exec.plugin.program.as_ptr(),
            exec.plugin.argv.as_ptr(),
            exec.plugin.envp.as_ptr(),
        );
        libc::_exit(41)
    }
}
