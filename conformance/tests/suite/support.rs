//! Running the real `outpost-conformance` binary, and making sure nothing it started
//! outlives the test.
//!
//! Every run gets a tag unique to the test process and the run. The fixture's manifest
//! passes `CONFORMANCE_FIXTURE_TAG` through to the plugin (and so to any helper it
//! starts), and runs of `-- python3 plugin.py` carry it as `--tag`; after the binary
//! exits, no live process may carry the tag in its environment or command line. A
//! watchdog kills a binary that does not finish (a hang in the suite is a test failure,
//! never a hung test); a panicking test kills the binary and every tagged process.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long one run of the binary may take before the test calls it a hang. Far above
/// any real run (the slowest fixture mode takes about 15 s): it only turns a hang into
/// a failure.
const WATCHDOG: Duration = Duration::from_mins(5);

/// The fixture's slow call, as the tests pass it to `--slow-call`.
pub(crate) const SLOW_CALL: &str = r#"tool slow {"ms": 1200}"#;

/// The variable the fixture's manifest passes through, for finding its processes.
pub(crate) const TAG_VAR: &str = "CONFORMANCE_FIXTURE_TAG";

/// Variables of the fixture that must not leak in from the environment of the tests.
const FIXTURE_VARS: &[&str] = &[
    "CONFORMANCE_FIXTURE_MODE",
    "CONFORMANCE_FIXTURE_CAPABILITY",
    "CONFORMANCE_EXPECT_CWD",
    "CONFORMANCE_EXPECT_CONFIG",
    "CONFORMANCE_EXPECT_ENV",
    TAG_VAR,
];

/// tests/fixtures: plugin.py and its manifest.
pub(crate) fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the conformance crate is inside the workspace")
        .to_owned()
}

/// A run of `outpost-conformance` to be made.
#[derive(Debug)]
pub(crate) struct Conformance {
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    tag: String,
}

impl Conformance {
    /// `outpost-conformance ARGS...`, nothing else.
    pub(crate) fn new<S: Into<OsString>>(args: impl IntoIterator<Item = S>) -> Self {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            tag: unique_tag(),
        }
    }

    /// `run --json --slow-call 'tool slow ...' --plugin-dir tests/fixtures` with the
    /// fixture capability on and the given modes (comma separated, may be empty).
    pub(crate) fn fixture(modes: &str) -> Self {
        Self::new(["run", "--json", "--slow-call", SLOW_CALL, "--plugin-dir"])
            .arg(fixture_dir())
            .env("CONFORMANCE_FIXTURE_CAPABILITY", "1")
            .env("CONFORMANCE_FIXTURE_MODE", modes)
    }

    /// `run --json --plugin-id fixture ... -- python3 tests/fixtures/plugin.py --tag TAG
    /// PLUGIN_ARGS...`: the fixture as a bare command.
    pub(crate) fn fixture_command(plugin_args: &[&str]) -> Self {
        let run = Self::new(["run", "--json", "--plugin-id", "fixture"]);
        let tag = run.tag.clone();
        run.arg("--")
            .arg("python3")
            .arg(fixture_dir().join("plugin.py"))
            .arg("--tag")
            .arg(tag)
            .args(plugin_args.iter().copied())
    }

    pub(crate) fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs the binary to the end and checks that it left no process behind.
    pub(crate) fn run(self) -> Outcome {
        let binary = env!("CARGO_BIN_EXE_outpost-conformance");
        let mut command = Command::new(binary);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in FIXTURE_VARS {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.env(TAG_VAR, &self.tag);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut running = Running {
            child,
            tag: self.tag.clone(),
        };
        let stdout = drain(running.child.stdout.take());
        let stderr = drain(running.child.stderr.take());
        let status = running.wait(&self.args);
        let outcome = Outcome {
            status,
            stdout: stdout.join().expect("the stdout reader does not panic"),
            stderr: stderr.join().expect("the stderr reader does not panic"),
        };
        let leftovers = settle_tagged(&self.tag);
        assert!(
            leftovers.is_empty(),
            "processes outlived `outpost-conformance {}` (now killed): {leftovers:?}\n{}",
            show_args(&self.args),
            outcome.stderr
        );
        outcome
    }
}

/// The binary while it runs: dropped during a panic, it kills it and what it started.
struct Running {
    child: Child,
    tag: String,
}

impl Running {
    fn wait(&mut self, args: &[OsString]) -> ExitStatus {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if let Some(status) = self.child.try_wait().expect("the binary can be waited for") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "`outpost-conformance {}` did not finish within {} s: the suite hangs",
                show_args(args),
                WATCHDOG.as_secs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        kill_tagged(&self.tag);
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    let mut pipe = pipe.expect("the pipe was asked for");
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn show_args(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn unique_tag() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "conformance-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Live processes (not zombies) that carry `tag`: pid and command line.
fn tagged(tag: &str) -> Vec<(i32, String)> {
    let needle_env = format!("{TAG_VAR}={tag}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let zombie = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|stat| {
                let (_, after) = stat.rsplit_once(')')?;
                after.trim_start().chars().next()
            })
            .is_none_or(|state| state == 'Z' || state == 'X');
        if zombie {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        let carries = |bytes: &[u8], needle: &str| {
            bytes
                .split(|b| *b == 0)
                .any(|part| String::from_utf8_lossy(part).contains(needle))
        };
        if carries(&cmdline, tag) || carries(&environ, &needle_env) {
            let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, shown.trim().to_owned()));
        }
    }
    found
}

fn kill_tagged(tag: &str) {
    for (pid, _) in tagged(tag) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Tagged processes still alive once the binary has exited. A process the suite has
/// just killed may take a moment to die: it gets a few seconds before it counts.
fn settle_tagged(tag: &str) -> Vec<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = tagged(tag);
        if found.is_empty() {
            return found;
        }
        if Instant::now() >= deadline {
            kill_tagged(tag);
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a run printed, and how it ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Outcome {
    /// The exit code (a run killed by a signal fails the test).
    pub(crate) fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {:?}\n{}", self.status, self.stderr))
    }

    /// The `--json` report on stdout.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The ids of the checks of `report` with `status` (`pass`, `fail`, `warn`, `skip`).
pub(crate) fn ids_with(report: &Value, status: &str) -> BTreeSet<String> {
    checks(report)
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| c["id"].as_str().expect("ids are strings").to_owned())
        .collect()
}

/// The `checks` array of a report.
pub(crate) fn checks(report: &Value) -> &Vec<Value> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("a report has a `checks` array: {report}"))
}

/// The result of check `id` in `report`.
pub(crate) fn check<'r>(report: &'r Value, id: &str) -> &'r Value {
    checks(report)
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} is in the report: {report:#}"))
}

/// Every check id of the catalogue.
pub(crate) fn all_ids() -> BTreeSet<String> {
    outpost_conformance::CHECKS
        .iter()
        .map(|c| c.id.to_owned())
        .collect()
}

/// The leftover check is not vacuous: a tagged process is seen, and killed.
#[test]
fn tagged_processes_are_found_and_killed() {
    let tag = unique_tag();
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .env(TAG_VAR, &tag)
        .spawn()
        .expect("sleep runs");
    let pid = i32::try_from(sleeper.id()).unwrap();
    // Under a loaded machine /proc may lag the spawn for a moment: look again a while.
    let mut found = tagged(&tag);
    for _ in 0..50 {
        if found.len() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        found = tagged(&tag);
    }
    assert_eq!(found.len(), 1, "pid {pid}: {found:?}");
    assert_eq!(found[0].0, pid);
    kill_tagged(&tag);
    sleeper.wait().unwrap();
    assert!(tagged(&tag).is_empty());
}
