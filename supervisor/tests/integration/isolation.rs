//! Isolation with real processes: no process a plugin starts outlives it or the
//! supervisor, a plugin sees and reaches only what is its own, a root supervisor runs
//! plugins as their user, and the supervisor's own memory and environment are closed to
//! its user's other processes.
//!
//! The plugin is tests/fixtures/plugins/isolation/plugin.py, copied into a fresh root
//! per test. Every process it starts carries the test's token in its command line, so
//! a test finds them all in /proc, and a guard kills whatever is left if a test fails.
//!
//! The tests that kill a supervisor run one in another process: this test binary,
//! started again on [`helper_supervisor`]. Where the tests run as root (CI, containers),
//! that helper also runs as `nobody`, so the unprivileged path (a user namespace) is
//! tested too. Tests of a feature this host lacks say so on stderr and check what
//! holds instead.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use outpost_protocol::ManifestField;
use outpost_protocol::methods::Content;
use outpost_supervisor::isolation::{self, Containment, FilesystemSandbox};
use outpost_supervisor::{
    Call, Declarations, FsAccess, LaunchSpec, PluginSpec, PluginState, Reason, RunAs, Sandbox,
    SupervisionPolicy, Supervisor,
};
use serde_json::{Value, json};

/// Generous: only a guard against hangs, never a performance assertion.
const SETTLE: Duration = Duration::from_secs(20);

/// `nobody` on Debian, Ubuntu and Fedora.
const NOBODY: u32 = 65534;

/// The environment variable that turns [`helper_supervisor`] into a supervisor.
const HELPER: &str = "OUTPOST_ISOLATION_HELPER";

/// The line the helper prints once its plugin is ready.
const HELPER_READY: &str = "OUTPOST-HELPER-READY ";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/isolation/plugin.py")
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The real Python interpreter (`python3` on PATH may be a shim).
fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let output = Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 on PATH");
            PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
        })
        .clone()
}

/// A Python that `nobody` can run (the test's own may live in root's home), if any.
fn python_for_nobody() -> Option<PathBuf> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .chain([python()])
        .find(|candidate| {
            Command::new(candidate)
                .args(["-c", "pass"])
                .uid(NOBODY)
                .gid(NOBODY)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
}

/// Whether a helper supervisor run as `uid` (or as this process's user) must get
/// namespaces: this process's probe found them, and, for another user, no kernel knob
/// forbids unprivileged user namespaces. A host that has none (a container without
/// CAP_SYS_ADMIN) makes the tests check the fallback instead.
fn namespaces_expected(uid: Option<u32>) -> bool {
    let knob = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|v| v.trim().to_owned())
    };
    isolation::probe().namespaces.available
        && (uid.is_none()
            || (knob("/proc/sys/user/max_user_namespaces").is_none_or(|v| v != "0")
                && knob("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v == "1")
                && knob("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
                    .is_none_or(|v| v == "0")))
}

/// Every live process whose command line carries `token`.
fn processes(token: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| arg == token.as_bytes())
            })
        })
        .collect()
}

/// Waits until at least `count` processes carry `token`.
fn wait_for_processes(token: &str, count: usize) -> Vec<i32> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let found = processes(token);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "only {found:?} of {count} processes started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that none of `pids` (or, when empty, no process with `token`) is left
/// within a few seconds (signals and teardown are asynchronous).
fn assert_gone(token: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes(token);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: processes {left:?} outlived it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Kills every process of a token when dropped, so a failed test leaves nothing.
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in processes(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// A unique token.
fn token(test: &str) -> String {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("outpost-isolation-{test}-{}-{n}", std::process::id())
}

/// How the fixture behaves.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Behaviour {
    /// Leaves three lingering processes behind at start.
    leave: bool,
    /// Ignores SIGTERM and stdin EOF.
    stubborn: bool,
}

/// The fixture in a root of its own.
struct Plugin {
    dir: tempfile::TempDir,
    token: String,
    _reaper: Reaper,
}

impl Plugin {
    fn new(test: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture(), dir.path().join("plugin.py")).unwrap();
        // Readable by a plugin run as another user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let token = token(test);
        Self {
            dir,
            _reaper: Reaper(token.clone()),
            token,
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn spec(&self, id: &str, python: &Path, behaviour: &Behaviour) -> PluginSpec {
        spec(id, python, self.root(), &self.token, behaviour)
    }
}

fn spec(id: &str, python: &Path, root: &Path, token: &str, behaviour: &Behaviour) -> PluginSpec {
    let policy = SupervisionPolicy::from_layers([&json!({
        "health": {"intervalMs": 0},
        "restart": {"initialBackoffMs": 10, "maxBackoffMs": 50, "jitter": 0.0},
        "stop": {"shutdownMs": 500, "eofMs": 300, "termMs": 300},
    })])
    .unwrap();
    let mut launch = LaunchSpec::new(python, root)
        .with_args(["plugin.py", token])
        .with_policy(policy);
    if behaviour.leave {
        launch = launch.with_env("ISOLATION_LEAVE", "1");
    }
    if behaviour.stubborn {
        launch = launch.with_env("ISOLATION_STUBBORN", "1");
    }
    let declarations = ["facts", "try", "exit"]
        .into_iter()
        .fold(Declarations::default(), |d, tool| {
            d.with(ManifestField::Contracts("tools"), tool)
        });
    PluginSpec::new(id, launch).with_declarations(declarations)
}

async fn start(specs: Vec<PluginSpec>) -> Supervisor {
    let supervisor = Supervisor::start(specs).unwrap();
    assert!(
        supervisor.wait_settled(SETTLE).await,
        "plugins did not settle"
    );
    supervisor
}

/// Calls a tool of the fixture: its JSON answer.
async fn tool(supervisor: &Supervisor, name: &str, arguments: Value) -> Value {
    let call = Call::tool(name, arguments.as_object().cloned().unwrap_or_default())
        .with_timeout(Duration::from_secs(10));
    let answer = supervisor.call(call).await.unwrap().into_value();
    let text = answer["content"][0]["text"].as_str().unwrap().to_owned();
    serde_json::from_str(&text).unwrap()
}

async fn attempt(supervisor: &Supervisor, op: &str, path: &Path) -> Value {
    tool(supervisor, "try", json!({"op": op, "path": path})).await
}

// ---- the helper supervisor -------------------------------------------------------------

/// What the helper runs.
#[derive(serde::Serialize, serde::Deserialize)]
struct HelperOrder {
    python: PathBuf,
    root: PathBuf,
    token: String,
    behaviour: Behaviour,
    keep_dumpable: bool,
}

/// Not a test: the supervisor the other tests kill, when this binary is started again
/// with `OUTPOST_ISOLATION_HELPER` set. It runs one fixture plugin, prints
/// [`HELPER_READY`] with the host's isolation and the plugin's facts, and waits to be
/// killed. Without the variable it returns at once.
#[test]
fn helper_supervisor() {
    let Some(order) = std::env::var_os(HELPER) else {
        return;
    };
    let order: HelperOrder = serde_json::from_str(order.to_str().unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let spec = spec(
            "held",
            &order.python,
            &order.root,
            &order.token,
            &order.behaviour,
        );
        let mut builder = Supervisor::builder();
        if order.keep_dumpable {
            builder = builder.keep_dumpable();
        }
        let supervisor = builder.start(vec![spec]).unwrap();
        assert!(supervisor.wait_settled(SETTLE).await);
        let facts = tool(&supervisor, "facts", json!({})).await;
        let report = json!({
            "host": isolation::probe(),
            "facts": facts,
            "pid": supervisor.snapshot().plugins[0].pid,
        });
        println!("{HELPER_READY}{report}");
        std::future::pending::<()>().await;
    });
}

/// A helper supervisor in its own process.
struct Helper {
    child: std::process::Child,
    report: Value,
}

impl Helper {
    /// Starts the helper (as `uid`, when given) and waits for its plugin.
    fn start(order: &HelperOrder, uid: Option<u32>) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "isolation::helper_supervisor",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER, serde_json::to_string(order).unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, reports) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have written the test's name before it on the line.
                if let Some((_, report)) = line.split_once(HELPER_READY) {
                    let _ = lines.send(serde_json::from_str::<Value>(report).unwrap());
                }
            }
        });
        let Ok(report) = reports.recv_timeout(SETTLE) else {
            let _ = child.kill();
            panic!("the helper supervisor did not get its plugin ready");
        };
        Self { child, report }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills a helper supervisor whose plugin left daemons, a `setsid` child and a child
/// behind and ignores SIGTERM, with each of SIGKILL, SIGTERM and SIGQUIT: nothing of the
/// plugin survives.
fn supervisor_death_leaves_nothing(python: &Path, uid: Option<u32>) {
    for signal in [Signal::SIGKILL, Signal::SIGTERM, Signal::SIGQUIT] {
        let plugin = Plugin::new("killed");
        let order = HelperOrder {
            python: python.to_owned(),
            root: plugin.root().to_owned(),
            token: plugin.token.clone(),
            behaviour: Behaviour {
                leave: true,
                stubborn: true,
            },
            keep_dumpable: false,
        };
        let mut helper = Helper::start(&order, uid);
        // The plugin and the three it left behind.
        let started = wait_for_processes(&plugin.token, 4);
        let host = &helper.report["host"];
        // With namespaces, the helper soon prepares the next plugin's container (C
        // and its init): it must die with the helper too.
        let mut between = Vec::new();
        if host["containment"] == "namespaces" {
            let deadline = Instant::now() + SETTLE;
            loop {
                between = descendants_outside(helper.child.id(), &plugin.token);
                if between.len() >= 4 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no container was made ahead: {between:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!(
            "supervisor as uid {}: containment {}, {}",
            uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
            host["containment"],
            host["namespaces"]
        );
        kill(helper.pid(), signal).unwrap();
        let status = helper.child.wait().unwrap();
        assert!(!status.success(), "the helper was killed");
        if namespaces_expected(uid) {
            assert_eq!(host["containment"], "namespaces", "{host}");
        }
        if host["containment"] == "namespaces" {
            assert_gone(
                &plugin.token,
                &format!("the supervisor's death by {signal}"),
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while between.iter().any(|&pid| alive(pid)) {
                assert!(
                    Instant::now() < deadline,
                    "the supervisor's death by {signal}: {between:?} outlived it"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            eprintln!(
                "no namespaces here ({}): processes that left the plugin's group may survive",
                host["namespaces"]["reason"]
            );
            for pid in started {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// The processes descended from `pid` whose command line does not carry `token`: the
/// C and init of each contained plugin, and those of a container made ahead.
fn descendants_outside(pid: u32, token: &str) -> Vec<i32> {
    let ours = processes(token);
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        // Each thread's children (C is the spawner thread's).
        let children: String = std::fs::read_dir(format!("/proc/{parent}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .collect::<Vec<_>>()
            .join(" ");
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            queue.push(child);
            let child = i32::try_from(child).unwrap();
            if !ours.contains(&child) {
                found.push(child);
            }
        }
    }
    found
}

#[test]
fn no_plugin_process_outlives_a_killed_supervisor() {
    supervisor_death_leaves_nothing(&python(), None);
}

#[test]
fn no_plugin_process_outlives_a_killed_unprivileged_supervisor() {
    if !running_as_root() {
        eprintln!("the tests run unprivileged: the other test covers this path");
        return;
    }
    let Some(python) = python_for_nobody() else {
        eprintln!("no Python that uid {NOBODY} can run: skipped");
        return;
    };
    supervisor_death_leaves_nothing(&python, Some(NOBODY));
}

#[test]
fn an_unprivileged_supervisor_contains_its_plugin_in_a_user_namespace() {
    let (python, uid) = if running_as_root() {
        let Some(python) = python_for_nobody() else {
            eprintln!("no Python that uid {NOBODY} can run: skipped");
            return;
        };
        (python, Some(NOBODY))
    } else {
        (python(), None)
    };
    let plugin = Plugin::new("unprivileged");
    let order = HelperOrder {
        python,
        root: plugin.root().to_owned(),
        token: plugin.token.clone(),
        behaviour: Behaviour::default(),
        keep_dumpable: false,
    };
    let helper = Helper::start(&order, uid);
    let host = &helper.report["host"];
    let facts = &helper.report["facts"];
    assert_eq!(host["runningAsRoot"], false);
    if namespaces_expected(uid) {
        assert_eq!(host["containment"], "namespaces", "{host}");
    }
    if host["containment"] != "namespaces" {
        eprintln!("no user namespaces here: {}", host["namespaces"]);
        return;
    }
    // Its own uid, mapped to itself; PID 2 of its namespace.
    let own_uid = u64::from(uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw()));
    assert_eq!(facts["uid"], own_uid, "{facts}");
    assert_eq!(facts["pid"], 2, "{facts}");
    if host["privateProc"]["available"] == true {
        assert_eq!(facts["procPids"], json!([1, 2]), "{facts}");
    }
    // The reported pid is the plugin's own process, seen from the host.
    let pid = helper.report["pid"].as_u64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains(&plugin.token),
        "pid {pid} is not the plugin"
    );
}

#[tokio::test]
async fn every_stop_path_ends_every_process_the_plugin_left() {
    let plugin = Plugin::new("stops");
    let behaviour = Behaviour {
        leave: true,
        stubborn: true,
    };
    let supervisor = start(vec![plugin.spec("stops", &python(), &behaviour)]).await;
    let contained = isolation::probe().containment == Containment::Namespaces;
    if !contained {
        eprintln!("no namespaces here: a `setsid` daemon survives the process group");
        crate::shut_down(&supervisor).await;
        return;
    }

    // A stop asked for: the stop escalation, to SIGKILL.
    wait_for_processes(&plugin.token, 4);
    supervisor.stop_plugin("stops").await.unwrap();
    assert_gone(&plugin.token, "a stop");

    // A crash: the plugin exits, what it left dies with it.
    supervisor.start_plugin("stops").await.unwrap();
    assert!(supervisor.wait_settled(SETTLE).await);
    let before = wait_for_processes(&plugin.token, 4);
    let crash = Call::tool("exit", json!({"code": 3}).as_object().cloned().unwrap())
        .with_timeout(Duration::from_secs(10));
    let _ = supervisor.call(crash).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while before.iter().any(|&pid| alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes of the crashed plugin survived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Shutdown.
    assert!(supervisor.wait_settled(SETTLE).await);
    wait_for_processes(&plugin.token, 4);
    crate::shut_down(&supervisor).await;
    assert_gone(&plugin.token, "shutdown");
}

#[tokio::test]
async fn a_contained_plugin_sees_only_its_own_processes() {
    let (a, b) = (Plugin::new("seer-a"), Plugin::new("seer-b"));
    let supervisor = start(vec![
        a.spec("seer-a", &python(), &Behaviour::default()),
        b.spec("seer-b", &python(), &Behaviour::default()),
    ])
    .await;
    let host = isolation::probe();
    let facts = tool(&supervisor, "facts", json!({})).await;
    let snapshot = supervisor.snapshot();
    let pid_of = |id: &str| {
        snapshot
            .plugins
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.pid)
            .unwrap()
    };
    // The call went to one of the two (their tools conflict: the first registered
    // wins).
    let (me, other) = if facts["id"] == "seer-a" {
        ("seer-a", "seer-b")
    } else {
        ("seer-b", "seer-a")
    };
    let supervisor_pid = std::process::id();
    let sibling = pid_of(other);
    for secret in [
        format!("/proc/{supervisor_pid}/environ"),
        format!("/proc/{sibling}/environ"),
    ] {
        let tried = attempt(&supervisor, "read", Path::new(&secret)).await;
        if host.private_proc.available {
            assert_eq!(tried["ok"], false, "{me} read {secret}: {tried}");
        }
    }
    if host.containment == Containment::Namespaces {
        assert_eq!(facts["pid"], 2, "{facts}");
        assert_eq!(facts["pgid"], 2, "the plugin leads its own group: {facts}");
        // In a session C leads (out of the plugin's sight), not the supervisor's: no
        // controlling terminal.
        assert_eq!(facts["sid"], 0, "{facts}");
        let plugin = Pid::from_raw(i32::try_from(pid_of(me)).unwrap());
        let session = nix::unistd::getsid(Some(plugin)).unwrap();
        assert_ne!(session, nix::unistd::getsid(None).unwrap(), "{facts}");
        // Its own System V and POSIX message queue objects.
        let ours = std::fs::read_link("/proc/self/ns/ipc").unwrap();
        assert_ne!(facts["ipcNamespace"], ours.to_str().unwrap(), "{facts}");
        if host.private_proc.available {
            assert_eq!(facts["procPids"], json!([1, 2]), "{facts}");
        }
    } else {
        assert_eq!(facts["pgid"], facts["pid"], "{facts}");
    }
    // No capability, root or not: nothing for `exec` to grant either, as root.
    let caps = &facts["capabilities"];
    let none = "0000000000000000";
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(caps[set], none, "{set}: {facts}");
    }
    if running_as_root() {
        assert_eq!(caps["CapBnd"], none, "{facts}");
    }
    // The standard streams, and the directory being listed.
    assert_eq!(facts["fds"], json!([0, 1, 2, 3]), "{facts}");
    crate::shut_down(&supervisor).await;
}

/// `PPid` of `pid`.
fn parent_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_processes_between_supervisor_and_plugin_hold_nothing_of_the_supervisor() {
    if isolation::probe().containment != Containment::Namespaces {
        eprintln!("no namespaces here: the plugin is the supervisor's direct child");
        return;
    }
    let (a, b) = (Plugin::new("held-a"), Plugin::new("held-b"));
    let supervisor = start(vec![
        a.spec("held-a", &python(), &Behaviour::default()),
        b.spec("held-b", &python(), &Behaviour::default()),
    ])
    .await;
    for plugin in supervisor.snapshot().plugins {
        let pid = plugin.pid.unwrap();
        let init = parent_of(pid);
        let leader = parent_of(init);
        assert_eq!(
            parent_of(leader),
            std::process::id(),
            "C is the supervisor's child"
        );
        for (name, process) in [("the init", init), ("C", leader)] {
            // Not dumpable: the plugin cannot read their copy of the supervisor (the
            // kernel hands their /proc files to root).
            let owner = std::fs::metadata(format!("/proc/{process}/environ"))
                .unwrap()
                .uid();
            assert_eq!(owner, 0, "{name} of {} is dumpable", plugin.id);
            // Only root may list the descriptors of a process that is not dumpable.
            if !running_as_root() {
                continue;
            }
            let fds: Vec<_> = std::fs::read_dir(format!("/proc/{process}/fd"))
                .unwrap()
                .map(|fd| {
                    let fd = fd.unwrap();
                    std::fs::read_link(fd.path()).unwrap().display().to_string()
                })
                .collect();
            assert_eq!(fds.len(), 1, "{name} of {} holds {fds:?}", plugin.id);
            assert!(fds[0].starts_with("pipe:"), "{fds:?}");
        }
    }
    crate::shut_down(&supervisor).await;
}

#[tokio::test]
async fn the_filesystem_sandbox_opens_the_root_the_state_and_what_is_declared_only() {
    let plugin = Plugin::new("sandboxed");
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let readable = tempfile::tempdir().unwrap();
    std::fs::write(readable.path().join("data"), "data").unwrap();
    let writable = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");

    let mut spec = plugin.spec("sandboxed", &python(), &Behaviour::default());
    let access = FsAccess::default()
        .with_read(readable.path())
        .with_write(writable.path())
        .with_state_dir(&state_dir);
    spec.launch = spec
        .launch
        .with_sandbox(Sandbox::default().with_filesystem(Some(access)));
    let supervisor = start(vec![spec]).await;
    let facts = tool(&supervisor, "facts", json!({})).await;
    assert_eq!(
        facts["env"]["OUTPOST_STATE_DIR"],
        json!(state_dir),
        "{facts}"
    );
    assert_eq!(facts["env"]["TMPDIR"], json!(state_dir), "{facts}");
    let mode = std::fs::metadata(&state_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    let host = isolation::probe();
    let enforced = host.filesystem != FilesystemSandbox::Unavailable;
    let cases: &[(&str, &Path, bool)] = &[
        ("read", &plugin.root().join("plugin.py"), true),
        ("write", plugin.root(), false),
        ("write", &state_dir, true),
        ("read", &secret, false),
        ("list", outside.path(), false),
        ("read", &readable.path().join("data"), true),
        ("write", readable.path(), false),
        ("write", writable.path(), true),
        ("read", Path::new("/etc/passwd"), true),
        ("read", Path::new("/etc/hostname"), false),
        ("read", Path::new("/usr/bin/env"), true),
        ("write", Path::new("/dev/null"), false),
        ("list", &std::env::temp_dir(), false),
    ];
    for &(op, path, allowed) in cases {
        let tried = attempt(&supervisor, op, path).await;
        if !enforced {
            continue;
        }
        assert_eq!(
            tried["ok"],
            allowed,
            "{op} {}: {tried} (allowed: {allowed})",
            path.display()
        );
    }
    if !enforced {
        eprintln!("no Landlock here: {:?}", host.filesystem_detail);
    }
    // Only the sandbox kept the secret: with it off, the same plugin reads it.
    crate::shut_down(&supervisor).await;
    let mut spec = plugin.spec("unsandboxed", &python(), &Behaviour::default());
    spec.launch = spec
        .launch
        .with_sandbox(Sandbox::default().with_filesystem(None));
    let supervisor = start(vec![spec]).await;
    let tried = attempt(&supervisor, "read", &secret).await;
    assert_eq!(tried["ok"], true, "{tried}");
    crate::shut_down(&supervisor).await;
}

#[tokio::test]
async fn a_root_supervisor_runs_a_plugin_as_its_user() {
    if !running_as_root() {
        eprintln!("the tests run unprivileged: a user cannot be switched");
        return;
    }
    let Some(python) = python_for_nobody() else {
        eprintln!("no Python that uid {NOBODY} can run: skipped");
        return;
    };
    let plugin = Plugin::new("runas");
    let mut spec = plugin.spec("runas", &python, &Behaviour::default());
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    spec.launch = spec.launch.with_sandbox(
        Sandbox::default()
            .with_user(Some(RunAs::new(NOBODY, NOBODY, "nobody")))
            .with_filesystem(Some(FsAccess::default().with_state_dir(&state_dir))),
    );
    let supervisor = start(vec![spec]).await;
    assert_eq!(supervisor.state("runas").unwrap().0, PluginState::Ready);
    let facts = tool(&supervisor, "facts", json!({})).await;
    assert_eq!(
        (facts["uid"].clone(), facts["gid"].clone()),
        (json!(NOBODY), json!(NOBODY))
    );
    let metadata = std::fs::metadata(&state_dir).unwrap();
    assert_eq!(
        (metadata.uid(), metadata.gid()),
        (NOBODY, NOBODY),
        "the state directory is the plugin's"
    );
    let wrote = attempt(&supervisor, "write", &state_dir).await;
    assert_eq!(wrote["ok"], true, "{wrote}");
    // Root's files are root's again.
    let shadow = attempt(&supervisor, "read", Path::new("/etc/shadow")).await;
    assert_eq!(shadow["ok"], false, "{shadow}");
    crate::shut_down(&supervisor).await;
}

#[test]
fn the_supervisor_is_not_dumpable_unless_the_embedder_keeps_it_so() {
    // Read as another process of the supervisor's user would.
    let (uid, python) = if running_as_root() {
        let Some(python) = python_for_nobody() else {
            eprintln!("no Python that uid {NOBODY} can run: skipped");
            return;
        };
        (Some(NOBODY), python)
    } else {
        (None, python())
    };
    for keep_dumpable in [false, true] {
        let plugin = Plugin::new("dumpable");
        let order = HelperOrder {
            python: python.clone(),
            root: plugin.root().to_owned(),
            token: plugin.token.clone(),
            behaviour: Behaviour::default(),
            keep_dumpable,
        };
        let helper = Helper::start(&order, uid);
        let environ = format!("/proc/{}/environ", helper.child.id());
        let mut reader = Command::new("cat");
        reader
            .arg(&environ)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(uid) = uid {
            reader.uid(uid).gid(uid);
        }
        let readable = reader.status().unwrap().success();
        assert_eq!(
            readable, keep_dumpable,
            "{environ} readable by the same user: {readable} (kept dumpable: {keep_dumpable})"
        );
    }
}

#[tokio::test]
async fn a_started_supervisor_is_not_dumpable() {
    let plugin = Plugin::new("undumpable");
    let supervisor = start(vec![plugin.spec(
        "undumpable",
        &python(),
        &Behaviour::default(),
    )])
    .await;
    assert!(!nix::sys::prctl::get_dumpable().unwrap());
    crate::shut_down(&supervisor).await;
}

/// A script whose `#!` line names a file the kernel cannot run is not run by `/bin/sh`
/// instead (as `execvp` would): its interpreter's grant would come with it. Contained
/// or not, the start fails and the script's own lines never run.
#[tokio::test]
async fn a_script_the_kernel_refuses_is_not_run_by_the_shell() {
    for contain in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let fake = dir.path().join("not-a-program");
        std::fs::write(&fake, "echo hi\n").unwrap();
        let marker = out.path().join("ran");
        let script = dir.path().join("run");
        std::fs::write(
            &script,
            format!("#!{}\necho ran > {}\n", fake.display(), marker.display()),
        )
        .unwrap();
        for path in [&fake, &script] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let policy = SupervisionPolicy::from_layers([&json!({
            "health": {"intervalMs": 0},
            "restart": {"enabled": false},
        })])
        .unwrap();
        let launch = LaunchSpec::new(&script, dir.path())
            .with_policy(policy)
            .with_sandbox(
                Sandbox::default()
                    .with_contain(contain)
                    .with_filesystem(Some(FsAccess::default().with_write(out.path()))),
            );
        let supervisor = Supervisor::start(vec![PluginSpec::new("refused", launch)]).unwrap();
        assert!(supervisor.wait_settled(SETTLE).await);
        let (state, _) = supervisor.state("refused").unwrap();
        assert_ne!(state, PluginState::Ready, "contain {contain}");
        assert!(
            !marker.exists(),
            "the shell ran the script (contain {contain})"
        );
        crate::shut_down(&supervisor).await;
    }
}

/// When `pid` started, in clock ticks since boot.
fn started_at(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A plugin restarted after a crash starts in the container the supervisor made ahead
/// meanwhile, and is contained exactly as at its first start.
#[tokio::test]
async fn a_plugin_restarted_into_a_container_made_ahead_is_contained_the_same() {
    if isolation::probe().containment != Containment::Namespaces {
        eprintln!("no namespaces here: nothing is made ahead");
        return;
    }
    let plugin = Plugin::new("ahead");
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let environ = PathBuf::from(format!("/proc/{}/environ", std::process::id()));
    let supervisor = start(vec![plugin.spec("ahead", &python(), &Behaviour::default())]).await;
    let reach = async |supervisor: &Supervisor| {
        let mut tried = Vec::new();
        for (op, path) in [
            ("read", &secret),
            ("read", &environ),
            ("list", &outside.path().to_owned()),
        ] {
            tried.push(attempt(supervisor, op, path).await["ok"].clone());
        }
        tried
    };
    let first = tool(&supervisor, "facts", json!({})).await;
    let first_reach = reach(&supervisor).await;
    assert_eq!(first_reach, [false, false, false], "{first_reach:?}");
    let old = supervisor.snapshot().plugins[0].pid.unwrap();
    // The next plugin's container is made once the supervisor has had nothing to
    // start for 10 ms.
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(Pid::from_raw(i32::try_from(old).unwrap()), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + SETTLE;
    let pid = loop {
        if let Some(pid) = supervisor.snapshot().plugins[0]
            .pid
            .filter(|&pid| pid != old)
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the plugin did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(supervisor.wait_settled(SETTLE).await);
    let second = tool(&supervisor, "facts", json!({})).await;
    // C was made before the crash: about half a second older than the plugin (a C
    // made for it would be the same age, to a tick).
    let leader = parent_of(parent_of(pid));
    let ticks = started_at(pid) - started_at(leader);
    assert!(ticks >= 10, "C started {ticks} ticks before the plugin");
    let facts = [
        "id",
        "pid",
        "ppid",
        "pgid",
        "sid",
        "procPids",
        "fds",
        "capabilities",
        "uid",
        "gid",
        "env",
    ];
    for fact in facts {
        assert_eq!(second[fact], first[fact], "{fact}: {first} then {second}");
    }
    let ours = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_ne!(second["ipcNamespace"], ours.to_str().unwrap(), "{second}");
    assert_ne!(second["ipcNamespace"], first["ipcNamespace"], "{second}");
    assert_eq!(reach(&supervisor).await, first_reach, "the same sandbox");
    crate::shut_down(&supervisor).await;
    assert_gone(&plugin.token, "shutdown");
}

#[tokio::test]
async fn exits_pass_through_containment_exactly() {
    let plugin = Plugin::new("exits");
    let mut spec = plugin.spec("exits", &python(), &Behaviour::default());
    let current = serde_json::to_value(&spec.launch.policy).unwrap();
    spec.launch.policy =
        SupervisionPolicy::from_layers([&current, &json!({"restart": {"enabled": false}})])
            .unwrap();
    let supervisor = start(vec![spec]).await;
    for (arguments, expected) in [
        (json!({"code": 3}), "exit status 3"),
        (json!({"signal": 11}), "killed by signal 11 (SIGSEGV)"),
        (json!({"signal": 15}), "killed by signal 15 (SIGTERM)"),
    ] {
        supervisor.start_plugin("exits").await.unwrap();
        assert!(supervisor.wait_settled(SETTLE).await);
        let call = Call::tool("exit", arguments.as_object().cloned().unwrap())
            .with_timeout(Duration::from_secs(10));
        let _ = supervisor.call(call).await;
        assert!(supervisor.wait_settled(SETTLE).await);
        match supervisor.state("exits") {
            Some((PluginState::Failed, Some(Reason::RestartsDisabled { exit }))) => {
                assert_eq!(exit.status.text, expected, "{arguments}");
            }
            other => panic!("{arguments}: {other:?}"),
        }
    }
    crate::shut_down(&supervisor).await;
}

#[tokio::test]
async fn containment_off_runs_the_plugin_in_a_process_group_as_before() {
    let plugin = Plugin::new("grouped");
    let mut spec = plugin.spec("grouped", &python(), &Behaviour::default());
    spec.launch = spec
        .launch
        .with_sandbox(Sandbox::default().with_contain(false));
    let supervisor = start(vec![spec]).await;
    let facts = tool(&supervisor, "facts", json!({})).await;
    let pid = supervisor.snapshot().plugins[0].pid.unwrap();
    assert_eq!(
        facts["pid"], pid,
        "the plugin is the supervisor's child: {facts}"
    );
    assert_eq!(facts["ppid"], std::process::id(), "{facts}");
    assert_eq!(facts["pgid"], pid, "it leads its own group: {facts}");
    // And its own session: no controlling terminal, not the supervisor's session.
    assert_eq!(facts["sid"], pid, "it leads its own session: {facts}");
    crate::shut_down(&supervisor).await;
}

/// The examples' interpreters, as `outpost serve` finds them on PATH (pyenv's shim
/// included), run in the default sandbox.
#[tokio::test]
async fn python_and_node_run_in_the_default_sandbox() {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let on_path = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    let mut specs = Vec::new();
    let mut calls = Vec::new();
    if let Some(python3) = on_path("python3") {
        let launch =
            LaunchSpec::new(python3, plugins.join("python-example")).with_args(["plugin.py"]);
        let declarations =
            Declarations::default().with(ManifestField::Contracts("tools"), "note_list");
        specs.push(PluginSpec::new("notes", launch).with_declarations(declarations));
        calls.push("note_list");
    }
    if let Some(node) = on_path("node") {
        let launch = LaunchSpec::new(node, plugins.join("node-example")).with_args(["plugin.js"]);
        let declarations =
            Declarations::default().with(ManifestField::Contracts("tools"), "current_time");
        specs.push(PluginSpec::new("clock", launch).with_declarations(declarations));
        calls.push("current_time");
    }
    let supervisor = start(specs).await;
    for name in calls {
        let call = Call::tool(name, serde_json::Map::new()).with_timeout(Duration::from_secs(10));
        let answer = supervisor.call(call).await;
        assert!(
            answer.is_ok(),
            "{name}: {answer:?} ({:?})",
            supervisor.snapshot()
        );
        if let Ok(outpost_supervisor::Answer::Tool(result)) = &answer {
            assert!(
                matches!(result.content.first(), Some(Content::Text { .. })),
                "{result:?}"
            );
        }
    }
    crate::shut_down(&supervisor).await;
}

/// The cost of containment and of the filesystem sandbox: start to ready of a plugin
/// written in `sh` (so the interpreter's own start does not hide it), median of runs,
/// for each combination. A measurement, not a check: run it by hand with
/// `cargo test -p outpost-supervisor --test integration spawn_cost -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn spawn_cost() {
    const RUNS: usize = 40;
    const PLUGIN: &str = r#"IFS= read -r line
id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"1","plugin":{"id":"cost"}}}\n' "$id"
while IFS= read -r line; do :; done
"#;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("plugin.sh"), PLUGIN).unwrap();
    for (contain, filesystem) in [(false, false), (true, false), (false, true), (true, true)] {
        let sandbox = Sandbox::default()
            .with_contain(contain)
            .with_filesystem(filesystem.then(FsAccess::default));
        let policy = SupervisionPolicy::from_layers([&json!({"stop": {"shutdownMs": 1}})]).unwrap();
        let launch = LaunchSpec::new("/bin/sh", root.path())
            .with_args(["plugin.sh"])
            .with_policy(policy)
            .with_sandbox(sandbox);
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let begin = Instant::now();
            let supervisor =
                Supervisor::start(vec![PluginSpec::new("cost", launch.clone())]).unwrap();
            assert!(supervisor.wait_settled(SETTLE).await);
            times.push(begin.elapsed());
            let state = supervisor.state("cost").unwrap();
            assert_eq!(state.0, PluginState::Ready, "{state:?}");
            if contain && times.len() == 1 {
                // What the two processes between supervisor and plugin cost in memory.
                let init = parent_of(supervisor.snapshot().plugins[0].pid.unwrap());
                for (name, pid) in [("init", init), ("C", parent_of(init))] {
                    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                        .unwrap_or_default();
                    let field = |key: &str| {
                        rollup
                            .lines()
                            .find(|line| line.starts_with(key))
                            .map_or("?", |line| line[key.len()..].trim())
                            .to_owned()
                    };
                    println!(
                        "  {name}: Rss {}, Pss {}, Private_Dirty {}",
                        field("Rss:"),
                        field("Pss:"),
                        field("Private_Dirty:")
                    );
                }
            }
            crate::shut_down(&supervisor).await;
        }
        times.sort();
        println!(
            "contain {contain:5}, filesystem sandbox {filesystem:5}: median {:.2} ms, min {:.2} ms, max {:.2} ms ({RUNS} runs)",
            times[RUNS / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3,
        );
    }
}
