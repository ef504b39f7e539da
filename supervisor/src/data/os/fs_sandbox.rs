//! The filesystem sandbox: which paths a plugin may reach, the Landlock ruleset that
//! says so (built here, in the supervisor, and enforced by the plugin's process just
//! before `exec`), and the plugin's private state directory.
//!
//! # What a plugin may reach
//!
//! | what | rights |
//! | --- | --- |
//! | its root | read, execute |
//! | the system's programs and libraries: `/usr`, `/bin`, `/sbin`, `/lib`, `/lib32`, `/lib64`, `/libx32` | read, execute |
//! | the installation its program belongs to, when that is outside those (see [`runtime_dirs`]) | read, execute |
//! | the `/etc` entries runtimes read ([`ETC`]), not the rest of `/etc` | read |
//! | `/proc` (private when the plugin has its own namespaces), `/sys/devices/system/cpu`, `/sys/fs/cgroup` | read |
//! | `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom` | read, write |
//! | the declared read paths | read, execute |
//! | the declared write paths and its state directory | everything but making device nodes |
//!
//! Rules are taken by the kernel on open files, so a symbolic link among these paths
//! grants its target. Everything else, the rest of `/etc`, home directories, `/tmp`,
//! the config file's directory, other plugins' roots and state, is out of reach for
//! reading as for writing. Looking a path up (`stat`) is not restricted by Landlock:
//! a plugin can tell whether a file exists, not read it.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope,
};

/// The Landlock ABI whose filesystem rights the sandbox handles: every right up to
/// device ioctls. Kernels below it get what they know ("partial").
pub(crate) const FULL_ABI: u32 = 5;

/// Directories of the system's programs and libraries.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The `/etc` entries runtimes read: the dynamic loader's cache and config, TLS
/// certificates and crypto policies, name resolution, users and groups (names only:
/// never `shadow`), the time zone, and Debian's `alternatives`.
pub(crate) const ETC: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ld.so.preload",
    "ssl",
    "pki",
    "ca-certificates",
    "ca-certificates.conf",
    "crypto-policies",
    "resolv.conf",
    "hosts",
    "host.conf",
    "gai.conf",
    "nsswitch.conf",
    "services",
    "protocols",
    "passwd",
    "group",
    "localtime",
    "timezone",
    "alternatives",
    "mime.types",
];

/// What the kernel tells about itself (`/proc` is added apart: see
/// [`Reach::private_proc`]).
const KERNEL: &[&str] = &["/sys/devices/system/cpu", "/sys/fs/cgroup"];

/// Devices every program may open.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Directories a program's installation is never widened to (only the program's own
/// directory is granted): they hold other people's or other programs' files.
const NEVER_WHOLE: &[&str] = &[
    "/", "/home", "/root", "/tmp", "/var", "/var/tmp", "/opt", "/etc", "/run", "/srv", "/mnt",
    "/media", "/boot", "/dev", "/proc", "/sys",
];

/// The rights one path gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rights {
    /// Read files, list directories, execute.
    Read,
    /// Everything, creating and deleting included.
    Write,
    /// Read and write an existing device.
    Device,
}

/// One path of the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) path: PathBuf,
    pub(crate) rights: Rights,
    /// Declared by the operator: a missing path is an error, not skipped.
    pub(crate) declared: bool,
}

impl Rule {
    fn system(path: impl Into<PathBuf>, rights: Rights) -> Self {
        Self {
            path: path.into(),
            rights,
            declared: false,
        }
    }
}

/// What the sandbox is built from.
#[derive(Debug)]
pub(crate) struct Reach<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [String],
    pub(crate) root: &'a Path,
    /// Where to find what `env` and `#!` lines name: the plugin's `PATH` when it is the
    /// supervisor's own, else `None` (no lookup: see `sandbox_path` in the parent).
    pub(crate) path_env: Option<&'a OsStr>,
    /// Home directories (the supervisor's, the plugin user's), never granted whole.
    pub(crate) homes: &'a [PathBuf],
    pub(crate) read: &'a [PathBuf],
    pub(crate) write: &'a [PathBuf],
    pub(crate) state_dir: &'a Path,
    /// Whether the plugin gets a private `/proc`: a new procfs, which only the
    /// plugin's process can name (its rule is added there: [`proc_access`]).
    pub(crate) private_proc: bool,
}

/// The rights on `/proc`: read files and list directories.
pub(crate) fn proc_access() -> u64 {
    (AccessFs::ReadFile | AccessFs::ReadDir).bits()
}

/// Every path the plugin may reach, with its rights.
pub(crate) fn rules(reach: &Reach<'_>) -> Vec<Rule> {
    let mut rules: Vec<Rule> = SYSTEM
        .iter()
        .map(|dir| Rule::system(*dir, Rights::Read))
        .collect();
    rules.extend(
        ETC.iter()
            .map(|entry| Rule::system(Path::new("/etc").join(entry), Rights::Read)),
    );
    // A resolv.conf that links elsewhere (systemd-resolved, NetworkManager) is replaced
    // when the network changes: its directory, so the new file is readable too.
    if let Ok(target) = std::fs::canonicalize("/etc/resolv.conf")
        && !target.starts_with("/etc")
        && let Some(dir) = target.parent()
    {
        rules.push(Rule::system(dir, Rights::Read));
    }
    rules.extend(KERNEL.iter().map(|path| Rule::system(*path, Rights::Read)));
    if !reach.private_proc {
        rules.push(Rule::system("/proc", Rights::Read));
    }
    rules.extend(
        DEVICES
            .iter()
            .map(|path| Rule::system(*path, Rights::Device)),
    );
    rules.push(Rule::system(reach.root, Rights::Read));
    for dir in runtime_dirs(reach) {
        rules.push(Rule::system(dir, Rights::Read));
    }
    rules.extend(reach.read.iter().map(|path| Rule {
        path: path.clone(),
        rights: Rights::Read,
        declared: true,
    }));
    rules.extend(reach.write.iter().map(|path| Rule {
        path: path.clone(),
        rights: Rights::Write,
        declared: true,
    }));
    rules.push(Rule::system(reach.state_dir, Rights::Write));
    rules
}

/// The directories of the installations the plugin's program needs, beyond the
/// system's and the plugin root: the program's, the canonical program's, the
/// interpreter of a `#!` script's, and what `env` runs (for `/usr/bin/env python3`),
/// found on the plugin's `PATH`.
///
/// An installation is the code under the parent of the program's `bin` or `sbin`
/// directory (a Node or Python prefix): its `bin`, `sbin`, `lib`, `lib32`, `lib64` and
/// `libexec`, not the settings, credentials or config files beside them; or the whole
/// root of a version manager (a `shims` directory: pyenv, rbenv), whose versions and
/// settings the shims read. A program in any other directory is granted alone, not what
/// lies beside it. A home directory, an ancestor of one, or a directory of
/// [`NEVER_WHOLE`] is never a prefix: only the program's `bin` directory is granted.
///
/// A manifest cannot name a directory of its choice this way: every path is taken where
/// it really leads (its directory canonical: a path through `/proc/self/root` or a
/// symlinked directory is granted as what it is); what `env` or a `#!` line names
/// counts only if it is an executable file, `env` only if it is the system's and its
/// options are plain ones ([`env_program`]); and nothing among the plugins' state
/// directories is granted this way.
pub(crate) fn runtime_dirs(reach: &Reach<'_>) -> Vec<PathBuf> {
    let mut programs = vec![reach.program.to_path_buf()];
    if is_system_env(&reach.root.join(reach.program))
        && let Some(name) = env_program(reach.args).and_then(plain_name)
        && let Some(found) = search(name, reach.path_env, reach.root)
        && is_executable(&found)
    {
        programs.push(found);
    }
    let mut executables = Vec::new();
    for program in programs {
        let canonical = std::fs::canonicalize(&program).ok();
        if let Some(interpreters) = canonical
            .as_deref()
            .and_then(|p| shebang(p, reach.path_env, reach.root))
        {
            executables.extend(interpreters.into_iter().filter(|path| is_executable(path)));
        }
        executables.push(program);
        executables.extend(canonical);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for executable in executables {
        let executable = real_location(&executable, reach.root);
        // The system's (granted already), the plugin's own, and anything among the
        // plugins' state directories (its own is granted already; the others are not
        // its to reach through a program planted there).
        let state_parent = reach.state_dir.parent().unwrap_or(reach.state_dir);
        if SYSTEM.iter().any(|dir| executable.starts_with(dir))
            || executable.starts_with(reach.root)
            || executable.starts_with(state_parent)
        {
            continue;
        }
        for dir in installation(&executable, reach.homes) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

fn installation(executable: &Path, homes: &[PathBuf]) -> Vec<PathBuf> {
    let Some(dir) = executable.parent() else {
        return Vec::new();
    };
    let homeish = |path: &Path| homes.iter().any(|home| home.starts_with(path));
    let never_whole =
        |path: &Path| homeish(path) || NEVER_WHOLE.iter().any(|never| path == Path::new(never));
    let kind = dir.file_name().and_then(OsStr::to_str);
    if never_whole(dir) || !matches!(kind, Some("bin" | "sbin" | "shims")) {
        // Not an installation's `bin` (a program in `/etc`, a home, `/tmp`, any other
        // directory): the program alone, not what lies beside it.
        return vec![executable.to_path_buf()];
    }
    let own = vec![dir.to_path_buf()];
    let Some(prefix) = dir.parent() else {
        return own;
    };
    // Someone's home (`/home/<user>`), whoever's it is.
    if never_whole(prefix) || prefix.parent() == Some(Path::new("/home")) {
        return own;
    }
    if kind == Some("shims") {
        // A version manager's root: its shims read its settings and versions.
        return vec![prefix.to_path_buf()];
    }
    // An installation's code, not what else its directory holds (an install of Outpost
    // itself keeps its config and token beside its `bin`).
    ["bin", "sbin", "lib", "lib32", "lib64", "libexec"]
        .iter()
        .map(|part| prefix.join(part))
        .filter(|path| path.is_dir())
        .collect()
}

/// The interpreter a `#!` script names (and what it runs through the system's `env`),
/// if `path` is one, read as the kernel reads the line: after `#!`, spaces and tabs are
/// skipped, the interpreter runs to the next space, tab or end of line (a relative one
/// from `root`, where the plugin starts), and the rest of the line, trimmed, is at most
/// one argument. `env` with one word is that program on `PATH`; with anything else
/// (options, a split string, spaces) nothing is granted for what it runs.
fn shebang(path: &Path, path_env: Option<&OsStr>, root: &Path) -> Option<Vec<PathBuf>> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let mut head = [0_u8; 256];
    let n = read_head(path, &mut head)?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let start = line.iter().position(|b| !blank(b))?;
    let line = &line[start..];
    let end = line.iter().position(blank).unwrap_or(line.len());
    let interpreter = root.join(std::str::from_utf8(&line[..end]).ok()?);
    let rest = &line[end..];
    let rest = &rest[rest.iter().position(|b| !blank(b)).unwrap_or(rest.len())..];
    let rest = &rest[..rest.iter().rposition(|b| !blank(b)).map_or(0, |at| at + 1)];
    let argument = std::str::from_utf8(rest).ok()?;
    // An interpreter is granted only where its path cannot be steered (`steady_path`)
    // and the kernel runs it (`is_elf`).
    let mut found: Vec<PathBuf> = (steady_path(&interpreter) && is_elf(&interpreter))
        .then(|| interpreter.clone())
        .into_iter()
        .collect();
    if is_system_env(&interpreter)
        && let Some(name) = plain_name(argument)
        && let Some(program) = search(name, path_env, root)
    {
        found.push(program);
    }
    Some(found)
}

/// The program `env` runs, given its arguments, when they are of the plain forms
/// this understands: `NAME=VALUE` assignments, `-u NAME` (`--unset NAME`,
/// `--unset=NAME`) and `--`, none of them touching `PATH` (then `env` looks elsewhere
/// than the sandbox would). Any other option (an abbreviation, a cluster, `-i`, `-C`,
/// `-a`, a split string `-S`, whose quotes, escapes and variables `env` reads its own
/// way) gives `None`: nothing is granted for a command line this cannot read for
/// certain, rather than a path its options could have named.
fn env_program(args: &[String]) -> Option<&str> {
    let mut args = args.iter().map(String::as_str);
    let mut options = true;
    while let Some(arg) = args.next() {
        match arg {
            // A `PATH` of env's own: the program is not found where the sandbox looks.
            _ if arg.starts_with("PATH=") => return None,
            "--" if options => options = false,
            // No environment, or no `PATH`: `env` looks in its own default directories.
            "-i" | "-" | "--ignore-environment" | "--unset=PATH" if options => return None,
            "-u" | "--unset" if options => {
                if args.next()? == "PATH" {
                    return None;
                }
            }
            _ if options && arg.starts_with("--unset=") => {}
            _ if options && arg.starts_with('-') => return None,
            _ if arg.contains('=') => {}
            _ => return Some(arg),
        }
    }
    None
}

/// Whether `program` is the system's `env` (not a file of the plugin's that happens to
/// be called so).
fn is_system_env(program: &Path) -> bool {
    program.file_name() == Some(OsStr::new("env"))
        && std::fs::canonicalize(program)
            .is_ok_and(|real| SYSTEM.iter().any(|dir| real.starts_with(dir)))
}

/// `word` when it is a plain program name, to be found on `PATH` (the operator's
/// directories): no `/` (a path a plugin could steer through a symbolic link it owns,
/// or through `/proc/self`, which names another process here than where it runs), no
/// option, no assignment, no character a shell or `env` would read otherwise.
fn plain_name(word: &str) -> Option<&str> {
    (!word.is_empty()
        && !word.starts_with('-')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    .then_some(word)
}

/// Whether a `#!` interpreter's path leads where it says, for whoever runs it: absolute
/// and already canonical (no symbolic link, in the directories or as the file itself,
/// that a plugin could re-point between this look and the `exec`; no `..`; nothing
/// through `/proc`, whose `self` is another process here than there).
fn steady_path(path: &Path) -> bool {
    path.is_absolute()
        && !path.starts_with("/proc")
        && std::fs::canonicalize(path).is_ok_and(|real| real == path)
}

/// Whether `path` is an ELF program: what the kernel runs as a `#!` line's interpreter.
/// Anything else fails there (`ENOEXEC`), and `execvp` then has `/bin/sh` run the
/// script: the file named would be granted, and the plugin's own code run.
fn is_elf(path: &Path) -> bool {
    // The ELF identification and header fields the kernel checks before it runs a file:
    // 64-bit, little-endian, an executable or a shared object, for this machine.
    const CLASS_64: u8 = 2;
    const LITTLE_ENDIAN: u8 = 1;
    const EXECUTABLE: u16 = 2;
    const SHARED: u16 = 3;
    #[cfg(target_arch = "x86_64")]
    const MACHINE: u16 = 62;
    #[cfg(target_arch = "aarch64")]
    const MACHINE: u16 = 183;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const MACHINE: u16 = u16::MAX;
    let mut header = [0_u8; 20];
    if read_head(path, &mut header) != Some(header.len()) {
        return false;
    }
    let kind = u16::from_le_bytes([header[16], header[17]]);
    let machine = u16::from_le_bytes([header[18], header[19]]);
    header.starts_with(b"\x7fELF")
        && header[4] == CLASS_64
        && header[5] == LITTLE_ENDIAN
        && matches!(kind, EXECUTABLE | SHARED)
        && machine == MACHINE
}

/// The first bytes of `path` into `head` (how many were read), when it is a regular file:
/// opened without waiting, so that a FIFO (or any file that would block an open) a
/// plugin names holds up nothing, and read only once it is known to be a regular file.
fn read_head(path: &Path, head: &mut [u8]) -> Option<usize> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    Some(filled)
}

/// Whether `path` is a file some of whose execute bits are set.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where `path` really is: its directory made canonical (relative to `root`, where the
/// plugin starts), its own name kept (a symlink there is granted as the link, its target
/// on its own).
fn real_location(path: &Path, root: &Path) -> PathBuf {
    let path = root.join(path);
    match (path.parent().map(std::fs::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => path,
    }
}

/// `name` on `path_env`, as `exec` would find it (a name with a `/` is a path, from
/// `root` when relative); nothing when `path_env` has an entry that is relative, empty
/// or under `/proc`.
fn search(name: &str, path_env: Option<&OsStr>, root: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(root.join(name));
    }
    let dirs: Vec<PathBuf> = std::env::split_paths(path_env?).collect();
    // `exec` looks in a relative or empty entry too, from the plugin's directory, and
    // `/proc/self` is another process there than here: the program found here might not
    // be the one that runs.
    if dirs
        .iter()
        .any(|dir| !dir.is_absolute() || dir.starts_with("/proc"))
    {
        return None;
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Why the sandbox could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    /// A declared path does not exist (or cannot be opened).
    #[error(
        "the sandbox's {which} path {path} cannot be opened; create it, or remove it from the plugin's sandbox"
    )]
    Declared {
        which: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Landlock refused the ruleset.
    #[error("the kernel refused the filesystem sandbox's rules")]
    Landlock(#[source] landlock::RulesetError),
}

/// The Landlock ruleset for `rules`, as the descriptor the plugin's process enforces
/// (`None` when the kernel has no Landlock). Rights the kernel's ABI lacks are left
/// out; signals to processes outside the sandbox, and abstract UNIX sockets made
/// outside it, are refused where the kernel can (ABI 6).
pub(crate) fn ruleset(rules: &[Rule]) -> Result<Option<OwnedFd>, SandboxError> {
    let abi = ABI::V5;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    // What a writable path allows: everything but making device nodes (a root plugin
    // could otherwise reach any device through a node in its state directory).
    let write = all & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let device: BitFlags<AccessFs> =
        AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let mut ruleset = Ruleset::default()
        .handle_access(all)
        .and_then(|ruleset| ruleset.scope(Scope::Signal | Scope::AbstractUnixSocket))
        .and_then(Ruleset::create)
        .map_err(SandboxError::Landlock)?;
    for rule in rules {
        let fd = match PathFd::new(&rule.path) {
            Ok(fd) => fd,
            Err(_) if !rule.declared => continue,
            Err(error) => {
                return Err(SandboxError::Declared {
                    which: match rule.rights {
                        Rights::Write => "write",
                        Rights::Read | Rights::Device => "read",
                    },
                    path: rule.path.clone(),
                    source: io::Error::other(error),
                });
            }
        };
        let access = match rule.rights {
            Rights::Read => read,
            Rights::Write => write,
            Rights::Device => device,
        };
        // On a file (not a directory), the crate keeps only the rights that apply to
        // files (it reads the type from the descriptor; the ruleset is best effort).
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(SandboxError::Landlock)?;
    }
    Ok(ruleset.into())
}

/// Why the state directory could not be made ready.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub(crate) struct StateDirError {
    what: String,
    #[source]
    source: Option<io::Error>,
}

impl StateDirError {
    fn new(what: String, source: Option<io::Error>) -> Self {
        Self { what, source }
    }
}

/// The default state directory of `plugin`: `<temp dir>/outpost-<uid>/<plugin id>`.
pub(crate) fn default_state_dir(plugin: &str, uid: u32) -> PathBuf {
    std::env::temp_dir()
        .join(format!("outpost-{uid}"))
        .join(path_component(plugin))
}

/// `id` as one file name: bytes other than ASCII letters, digits, `-`, `_` and `.` as
/// `%XX`, and never `.` or `..`.
pub(crate) fn path_component(id: &str) -> String {
    let mut name = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            name.push(char::from(byte));
        } else {
            let _ = write!(name, "%{byte:02X}");
        }
    }
    if name.is_empty() || name == "." || name == ".." {
        name.insert(0, '%');
    }
    name
}

/// Creates the state directory `dir` (mode 0700) and its parents when missing, hands
/// it to `owner` (when the supervisor runs as root and the plugin as another user),
/// and checks nobody else can use it.
///
/// When `shared_parent` (the default location under the temp directory), the parent
/// is the supervisor's own directory in a world-writable place: it must be a real
/// directory of the supervisor's user that others cannot write to, or someone could
/// have planted it.
pub(crate) fn prepare_state_dir(
    dir: &Path,
    owner: Option<(u32, u32)>,
    shared_parent: bool,
) -> Result<(), StateDirError> {
    let me = nix::unistd::geteuid().as_raw();
    if shared_parent && let Some(parent) = dir.parent() {
        // Others may need to pass through it to their own directory (a plugin run as
        // another user), never to list or write it.
        let mode = if owner.is_some() { 0o711 } else { 0o700 };
        let inspect = |e| StateDirError::new(format!("cannot make {}", parent.display()), Some(e));
        match std::fs::DirBuilder::new().mode(mode).create(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(inspect(e)),
        }
        let metadata = std::fs::symlink_metadata(parent).map_err(inspect)?;
        if !metadata.is_dir() || metadata.uid() != me || metadata.mode() & 0o022 != 0 {
            return Err(StateDirError::new(
                format!(
                    "{} is not a directory of uid {me} closed to others; remove it (someone else may have made it), or set the plugin's state directory",
                    parent.display()
                ),
                None,
            ));
        }
        if metadata.mode() & 0o777 != mode {
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode))
                .map_err(inspect)?;
        }
    }
    ensure_dir(dir, owner)
}

/// Creates `dir` (mode 0700) when missing, hands it to `owner` (the supervisor's own
/// user when none is configured), and sets its mode.
fn ensure_dir(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), StateDirError> {
    const MODE: u32 = 0o700;
    let failed = |what: &str, e: io::Error| {
        StateDirError::new(
            format!("cannot {what} the state directory {}", dir.display()),
            Some(e),
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(MODE)
        .create(dir)
        .map_err(|e| failed("create", e))?;
    let metadata = std::fs::symlink_metadata(dir).map_err(|e| failed("inspect", e))?;
    if !metadata.is_dir() {
        return Err(StateDirError::new(
            format!(
                "the state directory {} is not a directory (a symbolic link?); remove it or choose another",
                dir.display()
            ),
            None,
        ));
    }
    // Its user's, the supervisor's when none is configured: a directory left to another
    // user by an earlier config would otherwise be closed to the plugin (a root plugin
    // has no capability to pass by).
    let (uid, gid) = owner.unwrap_or_else(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    if metadata.uid() != uid || metadata.gid() != gid {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(|e| failed("hand over", e))?;
    }
    if metadata.mode() & 0o7777 != MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(MODE))
            .map_err(|e| failed("set the mode of", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach<'a>(program: &'a Path, args: &'a [String], homes: &'a [PathBuf]) -> Reach<'a> {
        Reach {
            program,
            args,
            root: Path::new("/srv/plugins/demo"),
            path_env: None,
            homes,
            read: &[],
            write: &[],
            state_dir: Path::new("/tmp/outpost-0/demo"),
            private_proc: false,
        }
    }

    #[test]
    fn installations_are_widened_only_where_nothing_else_lives() {
        let base = tempfile::tempdir().unwrap();
        let home = base.path().join("home/ada");
        for dir in [
            ".cargo/bin",
            ".local/bin",
            ".local/lib",
            ".local/share",
            ".pyenv/shims",
            "bin",
            "tools/node/bin",
            "tools/node/lib",
            "tools/node/etc",
        ] {
            std::fs::create_dir_all(home.join(dir)).unwrap();
        }
        let homes = vec![home.clone()];
        let cases: &[(&str, &[&str])] = &[
            // A prefix in a home: its code, not the credentials beside it.
            (".cargo/bin/tool", &[".cargo/bin"]),
            (".local/bin/tool", &[".local/bin", ".local/lib"]),
            // A version manager's root: whole.
            (".pyenv/shims/python3", &[".pyenv"]),
            // The home itself: the program's directory only.
            ("bin/tool", &["bin"]),
            // A program right in the home: itself alone.
            ("tool", &["tool"]),
            // A prefix deeper down: its code, not its settings.
            ("tools/node/bin/node", &["tools/node/bin", "tools/node/lib"]),
        ];
        for (program, expected) in cases {
            let program = home.join(program);
            let dirs = runtime_dirs(&reach(&program, &[], &homes));
            let expected: Vec<PathBuf> = expected.iter().map(|dir| home.join(dir)).collect();
            assert_eq!(dirs, expected, "{}", program.display());
        }
        let system = runtime_dirs(&reach(Path::new("/usr/bin/node"), &[], &homes));
        assert!(
            system.is_empty(),
            "the system's programs are granted already: {system:?}"
        );
        let opt = runtime_dirs(&reach(Path::new("/opt/bin/tool"), &[], &homes));
        assert_eq!(opt, [PathBuf::from("/opt/bin")]);
    }

    /// An installation in `base`: `runtime/bin/lang`, executable. Its prefix and
    /// the interpreter.
    fn runtime_with_lang(base: &Path) -> (PathBuf, PathBuf) {
        let prefix = base.join("runtime");
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        let interpreter = prefix.join("bin/lang");
        // A program the kernel runs: a copy of one of the system's.
        std::fs::copy("/usr/bin/env", &interpreter).unwrap();
        std::fs::set_permissions(&interpreter, std::fs::Permissions::from_mode(0o755)).unwrap();
        // What is granted of it: its code (here `bin` alone).
        (prefix.join("bin"), interpreter)
    }

    #[test]
    fn env_and_shebang_lines_lead_to_the_interpreter() {
        let base = tempfile::tempdir().unwrap();
        let (prefix, _) = runtime_with_lang(base.path());
        let path_env = prefix.clone().into_os_string();

        let args = vec!["A=1".to_owned(), "lang".to_owned(), "main.lang".to_owned()];
        let mut through_env = reach(Path::new("/usr/bin/env"), &args, &[]);
        through_env.path_env = Some(&path_env);
        assert_eq!(runtime_dirs(&through_env), std::slice::from_ref(&prefix));

        let scripts = base.path().join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        let script = scripts.join("run");
        std::fs::write(&script, "#!/usr/bin/env lang\nprint 1\n").unwrap();
        let mut shebang = reach(&script, &[], &[]);
        shebang.path_env = Some(&path_env);
        // The script's own directory is no installation: the script alone.
        assert_eq!(runtime_dirs(&shebang), [prefix, script]);
    }

    /// What `env`'s options or a `#!` line name cannot widen the grant to a directory
    /// of the manifest's choice (`/` through an option's value or `/proc/self/root`).
    #[test]
    fn a_manifest_cannot_name_a_directory_of_its_choice() {
        let base = tempfile::tempdir().unwrap();
        let (prefix, interpreter) = runtime_with_lang(base.path());
        let path_env = prefix.clone().into_os_string();
        let granted = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
            let mut reach = reach(Path::new("/usr/bin/env"), &args, &[]);
            reach.path_env = Some(&path_env);
            runtime_dirs(&reach)
        };
        let lang = "lang";
        let split = format!("{lang} main.lang");
        for args in [
            &["-u", "/x", lang, "main.lang"][..],
            &["-u", "/etc/shadow", lang][..],
            &["--unset", "/x", lang][..],
            &["--unset=/x", "A=1", lang][..],
            &["--", "A=1", lang][..],
        ] {
            assert_eq!(granted(args), std::slice::from_ref(&prefix), "{args:?}");
        }
        // What this cannot read for certain grants nothing (GNU `env` takes `--uns` for
        // `--unset`, `-iu` for `-i -u`), nor does a file that is not executable, nor a
        // path (a plugin could steer one through a link it owns, or `/proc/self`).
        let full = interpreter.to_str().unwrap();
        let through_cwd = format!("/proc/self/cwd/{full}");
        for args in [
            &[full][..],
            &[through_cwd.as_str()][..],
            &["--uns", "/x", lang][..],
            &["-iu", "/x", lang][..],
            &["-C", "/", lang][..],
            &["-a", "/x", lang][..],
            // `env` reads a split string's quotes, escapes and variables its own way.
            &["-S", &split][..],
            &["--split-string", &split][..],
            &["--split-string=x"][..],
            &["/etc/passwd"][..],
            &["-u"][..],
            // `PATH` changed or gone: `env` looks elsewhere than the sandbox would.
            &["PATH=/elsewhere", lang][..],
            &["--", "PATH=/elsewhere", lang][..],
            &["-u", "PATH", lang][..],
            &["--unset=PATH", lang][..],
            &["-i", lang][..],
        ] {
            assert!(granted(args).is_empty(), "{args:?}");
        }
        // A `PATH` with a relative, empty or `/proc` entry: `exec` may find another
        // program there than the lookup here.
        for entries in [
            format!("bin:{}", prefix.display()),
            format!(":{}", prefix.display()),
            format!("/proc/self/cwd:{}", prefix.display()),
        ] {
            let entries = std::ffi::OsString::from(entries);
            let args = vec![lang.to_owned()];
            let mut reach = reach(Path::new("/usr/bin/env"), &args, &[]);
            reach.path_env = Some(&entries);
            assert!(runtime_dirs(&reach).is_empty(), "{entries:?}");
        }

        let scripts = base.path().join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        let script = scripts.join("run");
        std::fs::write(&script, "#!/proc/self/root/bin/sh\necho 1\n").unwrap();
        let dirs = runtime_dirs(&reach(&script, &[], &[]));
        assert_eq!(
            dirs,
            std::slice::from_ref(&script),
            "the shell is the system's, granted already"
        );

        // A `#!` line is read as the kernel reads it: only spaces and tabs separate,
        // and a relative interpreter is the plugin's own (from its root), not the
        // system's.
        let path_env = prefix.clone().into_os_string();
        for line in [
            "#!\x0b/usr/bin/env lang\n",
            "#!\u{a0}/usr/bin/env lang\n",
            "#!usr/bin/env lang\n",
            "#!/usr/bin/env -S lang\n",
            "#!/usr/bin/env lang -x\n",
            "#!/usr/bin/env \x0clang\n",
            "#!/usr/bin/env lang\r\n",
            "#!/usr/bin/env /proc/self/cwd/lang\n",
        ] {
            std::fs::write(&script, line).unwrap();
            let mut reading = reach(&script, &[], &[]);
            reading.path_env = Some(&path_env);
            assert_eq!(
                runtime_dirs(&reading),
                std::slice::from_ref(&script),
                "{line:?}"
            );
        }
        // An interpreter through a link, of a directory or of itself (which a plugin
        // owning it could re-point between this look and the `exec`), is not granted.
        let links = base.path().join("links");
        std::fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(&prefix, links.join("d")).unwrap();
        std::os::unix::fs::symlink(&interpreter, links.join("lang")).unwrap();
        for linked in [links.join("d/lang"), links.join("lang")] {
            assert!(is_executable(&linked));
            std::fs::write(&script, format!("#!{}\n", linked.display())).unwrap();
            assert_eq!(
                runtime_dirs(&reach(&script, &[], &[])),
                std::slice::from_ref(&script),
                "{}",
                linked.display()
            );
        }
        // An interpreter the kernel cannot run (a text, an ELF core or one for another
        // machine): `execvp` would have `/bin/sh` run the script instead, with what was
        // granted for it. And a FIFO, whose opening would wait for a writer: nothing
        // waits, nothing is granted.
        let program = std::fs::read(&interpreter).unwrap();
        let mut core = program.clone();
        core[16] = 4;
        let mut foreign = program.clone();
        foreign[18] ^= 0x7f;
        for (name, content) in [
            ("text", b"echo hi\n".to_vec()),
            ("core", core),
            ("foreign", foreign),
        ] {
            let path = prefix.join(name);
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        nix::unistd::mkfifo(
            &prefix.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .unwrap();
        for name in ["text", "core", "foreign", "fifo"] {
            std::fs::write(&script, format!("#!{}\n", prefix.join(name).display())).unwrap();
            assert_eq!(
                runtime_dirs(&reach(&script, &[], &[])),
                std::slice::from_ref(&script),
                "{name}"
            );
        }
        std::fs::write(&script, format!("#!{}\n", interpreter.display())).unwrap();
        assert_eq!(
            runtime_dirs(&reach(&script, &[], &[])),
            [prefix.clone(), script.clone()]
        );
        std::fs::write(&script, "#! \t/usr/bin/env\tlang \n").unwrap();
        let mut reading = reach(&script, &[], &[]);
        reading.path_env = Some(&path_env);
        assert_eq!(runtime_dirs(&reading), [prefix.clone(), script.clone()]);

        // A program planted among the plugins' state directories (a plugin whose id is
        // `bin` has its state in `.../bin`) grants nothing: not its neighbours' state.
        let planted = base.path().join("state/bin/x");
        std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
        std::fs::write(&planted, "").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut from_state = reach(&planted, &[], &[]);
        let own_state = base.path().join("state/evil");
        from_state.state_dir = &own_state;
        assert!(runtime_dirs(&from_state).is_empty());
    }

    /// A state directory an earlier config handed to another user comes back to the
    /// supervisor's when the plugin runs as the supervisor's user again.
    #[test]
    fn a_state_directory_comes_back_to_the_plugins_user() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("state/notes");
        ensure_dir(&dir, Some((65_534, 65_534))).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 65_534);
        ensure_dir(&dir, None).unwrap();
        let metadata = std::fs::metadata(&dir).unwrap();
        assert_eq!(
            (metadata.uid(), metadata.gid()),
            (0, nix::unistd::getegid().as_raw())
        );
    }

    #[test]
    fn ids_become_one_harmless_file_name() {
        assert_eq!(path_component("notes"), "notes");
        assert_eq!(path_component("../evil"), "..%2Fevil");
        assert_eq!(path_component(".."), "%..");
        assert_eq!(path_component(""), "%");
    }

    #[test]
    fn a_planted_shared_directory_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let shared = base.path().join("outpost-0");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        // Found open to others: someone may have planted it.
        let error = prepare_state_dir(&shared.join("demo"), None, true).unwrap_err();
        assert!(error.to_string().contains("closed to others"), "{error}");

        let other = tempfile::tempdir().unwrap();
        let fresh = other.path().join("outpost-0/demo");
        prepare_state_dir(&fresh, None, true).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
