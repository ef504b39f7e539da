//! `outpost serve` and `outpost call` as an operator runs them: the real binary on the
//! bundled example config (`plugins/outpost.json5`), whose plugins are the Rust, Python
//! and Node examples. Each test checks that every plugin process it caused is gone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// Generous: only a guard against hangs, never a performance assertion.
pub(super) const SETTLE: Duration = Duration::from_secs(30);

fn outpost() -> &'static str {
    env!("CARGO_BIN_EXE_outpost")
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/outpost.json5")
}

/// Builds the Rust example plugin into the workspace's `target/debug`, where the example
/// config's `outpost.binPath` looks for it (`cargo test` builds only the tested
/// package's binaries). Once per test binary; cargo's own lock orders concurrent runs.
fn build_rust_example() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--offline",
                "--quiet",
                "-p",
                "outpost-example-rust",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the Rust example plugin does not build");
    });
}

fn call(args: &[&str]) -> Output {
    build_rust_example();
    Command::new(outpost())
        .args(["call", "--standalone"])
        .args(args)
        .arg("--config")
        .arg(example_config())
        .stdin(Stdio::null())
        .output()
        .expect("outpost runs")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "outpost call failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Whether `pid` is a live process (a zombie is dead: it only waits to be reaped).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pids: &[i32]) {
    let start = Instant::now();
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(
            start.elapsed() < SETTLE,
            "plugin processes outlived the supervisor: {:?}",
            pids.iter().filter(|&&pid| alive(pid)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn call_runs_a_tool_of_each_example_language() {
    let rust = stdout_json(&call(&[
        "tool",
        "word_count",
        "--args",
        r#"{"text": "one two two"}"#,
    ]));
    assert_eq!(rust["details"]["words"], 3, "{rust}");
    assert_eq!(rust["details"]["uniqueWords"], 2, "{rust}");

    let node = stdout_json(&call(&["tool", "current_time"]));
    assert_eq!(node["details"]["timezone"], "UTC", "{node}");

    let python = stdout_json(&call(&[
        "tool",
        "note_add",
        "--args",
        r#"{"text": "héllo"}"#,
    ]));
    assert_eq!(python["content"][0]["type"], "text", "{python}");
}

#[test]
fn call_reaches_methods_commands_hooks_routes_and_providers() {
    let now = stdout_json(&call(&["method", "clock.now"]));
    assert_eq!(now["timezone"], "UTC", "{now}");

    let command = stdout_json(&call(&["command", "wordcount", "--args", r#""a b c""#]));
    assert!(command["text"].as_str().unwrap().contains('3'), "{command}");

    let hook = stdout_json(&call(&["hook", "before_prompt_build", "--args", "{}"]));
    let plugins: Vec<&str> = hook["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["plugin"].as_str().unwrap())
        .collect();
    assert!(
        plugins.contains(&"text-tools") && plugins.contains(&"clock"),
        "{hook}"
    );

    let route = stdout_json(&call(&[
        "http",
        "/text-tools/count",
        "--args",
        r#"{"method": "POST", "body": "x y"}"#,
    ]));
    assert_eq!(route["status"], 200, "{route}");

    let embedding = stdout_json(&call(&[
        "provider",
        "embedding:text-tools-hash",
        "--operation",
        "embed",
        "--args",
        r#"{"input": "hello"}"#,
    ]));
    assert!(embedding.to_string().contains('.'), "{embedding}");
}

#[test]
fn call_failures_exit_1_and_say_what_to_do() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["tool", "no_such_tool"],
            "no enabled, runnable plugin can own tool `no_such_tool`",
        ),
        (&["method", "nobody.here"], "`nobody.here`"),
        (
            &["tool", "word_count", "--args", "[1]"],
            "must be a JSON object",
        ),
        (
            &["tool", "word_count", "--args", "{"],
            "--args is not valid JSON",
        ),
        (
            &["provider", "embedding", "--operation", "embed"],
            "`<capability>:<id>`",
        ),
        (
            &["provider", "embedding:text-tools-hash"],
            "needs --operation",
        ),
        (
            &["tool", "word_count", "--args", r#"{"text": 5}"#],
            "text-tools",
        ),
        (
            &["command", "no-such-command"],
            "no plugin command matches `/no-such-command`",
        ),
    ];
    for (args, expected) in cases {
        let output = call(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}` in:\n{stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "{args:?}: nothing on stdout on failure"
        );
    }
}

/// A running `outpost serve` and the pids of its plugins, read from its JSON log.
struct Serve {
    child: Child,
    pids: Vec<i32>,
    lines: mpsc::Receiver<String>,
    /// Its state directory (`XDG_STATE_HOME`: the token and registry files).
    state: tempfile::TempDir,
    /// The API's address, once [`Serve::start`] has read it in the log.
    api: String,
}

impl Serve {
    /// Starts `outpost serve` on the example config and waits until its three plugins
    /// logged `ready`.
    fn start() -> Self {
        build_rust_example();
        let mut serve = Self::spawn(&example_config());
        let mut ready = Vec::new();
        while ready.len() < 3 {
            let fields = serve.wait_for("three plugins ready", |fields| {
                fields["message"] == "ready"
                    || fields["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("gateway API on http://"))
            });
            if let Some(address) = fields["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("gateway API on http://"))
            {
                address
                    .split([' ', '('])
                    .next()
                    .unwrap()
                    .clone_into(&mut serve.api);
                continue;
            }
            if let Some(pid) = fields["pid"].as_i64() {
                ready.push(fields["plugin"].as_str().unwrap().to_owned());
                serve.pids.push(i32::try_from(pid).unwrap());
            }
        }
        ready.sort();
        assert_eq!(ready, ["clock", "notes", "text-tools"]);
        serve
    }

    /// Starts `outpost serve --log-format json` on `config`, with its API on a port of
    /// its own and its files in a directory of its own, so that tests run side by side
    /// (and beside an `outpost serve` of the developer's).
    fn spawn(config: &Path) -> Self {
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new(outpost())
            .args([
                "serve",
                "--log-format",
                "json",
                "--api-listen",
                "127.0.0.1:0",
            ])
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env("XDG_STATE_HOME", state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("outpost runs");
        let lines = read_lines(child.stderr.take().unwrap());
        Self {
            child,
            pids: Vec::new(),
            lines,
            state,
            api: String::new(),
        }
    }

    /// The `fields` of the next JSON log record they match.
    fn wait_for(&self, waiting_for: &str, matches: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.next_line(waiting_for);
            let record: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
            if matches(&record["fields"]) {
                return record["fields"].clone();
            }
        }
    }

    fn next_line(&self, waiting_for: &str) -> String {
        self.lines.recv_timeout(SETTLE).unwrap_or_else(|_| {
            panic!("outpost serve: no log line while waiting for {waiting_for}")
        })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &pid in &self.pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

pub(super) fn read_lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// How `child` (an `outpost serve` told to stop) ended; killed if it has not within
/// [`SETTLE`], and the test fails.
pub(super) fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > SETTLE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("outpost serve did not exit within {SETTLE:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_stops_every_plugin_on_sigterm_and_exits_0() {
    let mut serve = Serve::start();
    assert!(serve.pids.iter().all(|&pid| alive(pid)));
    kill(serve.pid(), Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut serve.child);
    assert_eq!(
        status.code(),
        Some(0),
        "outpost serve exits 0 after SIGTERM"
    );
    wait_gone(&serve.pids);
    let log: Vec<String> = serve.lines.try_iter().collect();
    assert!(
        log.iter().any(|line| line.contains("every plugin stopped")),
        "the last lines say the stop finished:\n{}",
        log.join("\n")
    );
}

/// Calls in flight when SIGTERM comes are answered, none left without a word: one that
/// ends within the stop gets its own answer; one that would outlast it gets an error
/// answer (here the plugin's own `-32800`, its work cancelled by the stop), written
/// before `serve` exits.
#[test]
fn calls_in_flight_at_sigterm_are_answered() {
    let mut serve = Serve::start();
    let call = |seconds: u32| {
        Command::new(outpost())
            .args(["call", "tool", "sleep_then_answer", "--args"])
            .arg(format!(r#"{{"seconds": {seconds}, "answer": "done"}}"#))
            .arg("--config")
            .arg(example_config())
            .args(["--api-listen", &serve.api])
            .env("XDG_STATE_HOME", serve.state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (short, long) = (call(3), call(60));
    // Room for the calls to reach the plugin.
    std::thread::sleep(Duration::from_millis(1500));
    kill(serve.pid(), Signal::SIGTERM).unwrap();
    let short = short.wait_with_output().unwrap();
    assert_eq!(stdout_json(&short)["content"][0]["text"], "done");
    let long = long.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&long.stderr);
    assert!(!long.status.success(), "{said}");
    assert!(
        said.starts_with("error: ") && said.contains("(code -"),
        "an answer from the supervisor, not a connection cut short: {said}"
    );
    assert_eq!(wait_exit(&mut serve.child).code(), Some(0));
    wait_gone(&serve.pids);
}

#[test]
fn serve_stops_on_sigint_too() {
    let mut serve = Serve::start();
    kill(serve.pid(), Signal::SIGINT).unwrap();
    assert_eq!(wait_exit(&mut serve.child).code(), Some(0));
    wait_gone(&serve.pids);
}

#[test]
fn sigkill_of_the_supervisor_leaves_no_plugin_alive() {
    let mut serve = Serve::start();
    kill(serve.pid(), Signal::SIGKILL).unwrap();
    let _ = wait_exit(&mut serve.child);
    // Nobody stops the plugins now: the parent-death signal and EOF on stdin must.
    wait_gone(&serve.pids);
}

#[test]
fn a_generated_plugin_runs_once_load_paths_points_at_it() {
    let dir = tempfile::tempdir().unwrap();
    for lang in ["python", "node"] {
        let root = dir.path().join(format!("hello-{lang}"));
        let output = Command::new(outpost())
            .args(["new", "plugin", "--lang", lang])
            .arg(&root)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    let config = dir.path().join("outpost.json5");
    std::fs::write(
        &config,
        "{ plugins: { load: { paths: ['hello-python', 'hello-node'] } } }",
    )
    .unwrap();
    for (tool, id) in [
        ("hello_python_greet", "hello-python"),
        ("hello_node_greet", "hello-node"),
    ] {
        let output = Command::new(outpost())
            .args([
                "call",
                "tool",
                tool,
                "--args",
                r#"{"name": "Ada"}"#,
                "--config",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let result = stdout_json(&output);
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("Ada"),
            "{id}: {result}"
        );
    }
}

#[test]
fn sighup_restarts_a_failed_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flaky");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("openclaw.plugin.json"),
        r#"{"id": "flaky", "configSchema": {"type": "object"},
            "outpost": {"command": "python3", "args": ["plugin.py"], "entry": "plugin.py"}}"#,
    )
    .unwrap();
    // Exit 78 (permanent failure) until the marker exists, then a minimal plugin.
    std::fs::write(
        root.join("plugin.py"),
        r#"import json, os, sys
if not os.path.exists("ready-marker"):
    print("ready-marker is missing", file=sys.stderr)
    sys.exit(78)
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    if message["method"] == "initialize":
        result = {"protocolVersion": "1", "plugin": {"id": "flaky"}, "registrations": []}
    else:
        result = {}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
"#,
    )
    .unwrap();
    let config = dir.path().join("outpost.json5");
    std::fs::write(&config, "{ plugins: { load: { paths: ['flaky'] } } }").unwrap();

    let mut serve = Serve::spawn(&config);
    let failed = serve.wait_for("flaky to fail", |fields| fields["message"] == "failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("outpost reload"),
        "the reason says how to restart it: {failed}"
    );
    std::fs::write(root.join("ready-marker"), "").unwrap();
    kill(serve.pid(), Signal::SIGHUP).unwrap();
    let ready = serve.wait_for("flaky ready after SIGHUP", |fields| {
        fields["message"] == "ready" && fields["pid"].is_i64()
    });
    serve
        .pids
        .push(i32::try_from(ready["pid"].as_i64().unwrap()).unwrap());
    kill(serve.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut serve.child).code(), Some(0));
    wait_gone(&serve.pids);
}
