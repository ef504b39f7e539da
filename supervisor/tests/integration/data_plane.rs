//! The data plane with real child processes: tests/fixtures/plugins/fixture.py, correct
//! or misbehaving on request. Each test ends with the plugin in its documented state,
//! nothing hanging, and every process it started gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_protocol::methods::{CallContext, CommandResult, ToolResult};
use outpost_protocol::{ErrorCode, ErrorObject, ManifestField, RejectionCode};
use outpost_supervisor::{
    Answer, Call, Declarations, FsAccess, Gateway, GatewayFuture, HookOutcome, HookRunOutcome,
    LaunchSpec, MethodRequest, PluginSpec, PluginState, RegistryEvent, Sandbox, SupervisionPolicy,
    Supervisor,
};
use serde_json::{Map, Value, json};

/// Generous: only a guard against hangs, never a performance assertion.
const SETTLE: Duration = Duration::from_secs(20);

fn fixture_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/fixture.py")
}

/// The real Python interpreter: `python3` on PATH may be a shim (pyenv's is a shell
/// script that adds variables of its own to the environment).
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let output = std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 on PATH");
            PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
        })
        .clone()
}

/// A fixture plugin in its own temporary root.
struct Fixture {
    spec: PluginSpec,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(id: &str, mode: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env_set = BTreeMap::new();
        env_set.insert("FIXTURE_MODE".to_owned(), mode.to_owned());
        env_set.insert(
            "FIXTURE_PIDFILE".to_owned(),
            dir.path().join("pids").display().to_string(),
        );
        env_set.insert(
            "FIXTURE_MARKER".to_owned(),
            dir.path().join("marker").display().to_string(),
        );
        env_set.insert(
            "FIXTURE_EVENTS".to_owned(),
            dir.path().join("events").display().to_string(),
        );
        let policy = SupervisionPolicy::from_layers([&json!({
            "timeouts": {"handshakeMs": 10_000, "callMs": 10_000},
            "health": {"intervalMs": 0},
            "restart": {"initialBackoffMs": 10, "maxBackoffMs": 50, "jitter": 0.0},
            "stop": {"shutdownMs": 2000, "eofMs": 1000, "termMs": 1000},
        })])
        .unwrap();
        let declarations = Declarations::default()
            .with(ManifestField::Contracts("tools"), "echo")
            .with(ManifestField::Contracts("tools"), "slow")
            .with(ManifestField::Contracts("tools"), "replayable")
            .with(ManifestField::Contracts("tools"), "ask");
        // The fixture's script lives outside its root and writes its files inside it.
        // The pids it records are the host's only outside a PID namespace: these tests
        // run plugins in a process group; isolation.rs tests containment.
        let sandbox = Sandbox::default().with_contain(false).with_filesystem(Some(
            FsAccess::default()
                .with_read(fixture_script().parent().unwrap())
                .with_write(dir.path()),
        ));
        let mut launch = LaunchSpec::new(python(), dir.path())
            .with_args([fixture_script().display().to_string()])
            .with_policy(policy)
            .with_sandbox(sandbox);
        launch.env_set = env_set;
        let mut spec = PluginSpec::new(id, launch).with_declarations(declarations);
        // Its default hook (`before_prompt_build`) sees the conversation: granted, as
        // an operator would; the privacy test takes it away.
        spec.hooks.allow_conversation_access = Some(true);
        Self { spec, dir }
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.spec
            .launch
            .env_set
            .insert(name.to_owned(), value.to_owned());
        self
    }

    fn policy(mut self, layer: &Value) -> Self {
        let current = serde_json::to_value(&self.spec.launch.policy).unwrap();
        self.spec.launch.policy = SupervisionPolicy::from_layers([&current, layer]).unwrap();
        self
    }

    /// Every pid the fixture recorded (itself, each incarnation, and any child).
    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.path().join("pids"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    /// Every recorded process is gone (signals are asynchronous: a process SIGKILLed a
    /// moment ago may take a few milliseconds to die, hence the bounded wait).
    fn assert_all_gone(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        for pid in self.pids() {
            while alive(pid) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "process {pid} of the fixture is still running"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Running, or at least not a zombie (a reaped or zombie process is gone for us: an
/// orphan's zombie waits for whatever init this container has).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.trim_start().chars().next());
            state != Some('Z')
        }
        Err(_) => false,
    }
}

async fn wait_for_state(
    supervisor: &Supervisor,
    plugin: &str,
    wanted: PluginState,
) -> Option<String> {
    let (snapshot, mut events) = supervisor.subscribe();
    if let Some(p) = snapshot
        .plugins
        .iter()
        .find(|p| p.id == plugin && p.state == wanted)
    {
        return p.reason.as_ref().map(ToString::to_string);
    }
    tokio::time::timeout(SETTLE, async {
        loop {
            match events.recv().await.unwrap() {
                RegistryEvent::PluginState {
                    plugin: p,
                    state,
                    reason,
                    ..
                } if p == plugin && state == wanted => return reason.map(|r| r.to_string()),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "`{plugin}` never became {wanted}; it is {:?}",
            supervisor.state(plugin)
        )
    })
}

async fn start(fixtures: &[&Fixture]) -> Supervisor {
    let supervisor = Supervisor::start(fixtures.iter().map(|f| f.spec.clone()).collect()).unwrap();
    assert!(
        supervisor.wait_settled(SETTLE).await,
        "plugins did not settle"
    );
    supervisor
}

/// `call` with `context` and `timeout`.
async fn make(
    supervisor: &Supervisor,
    call: Call,
    context: CallContext,
    timeout: Option<Duration>,
) -> Result<Answer, ErrorObject> {
    let call = call.with_context(context);
    let call = match timeout {
        Some(timeout) => call.with_timeout(timeout),
        None => call,
    };
    supervisor.call(call).await
}

async fn call_tool(
    supervisor: &Supervisor,
    name: &str,
    arguments: Map<String, Value>,
    context: CallContext,
    timeout: Option<Duration>,
) -> Result<ToolResult, ErrorObject> {
    match make(supervisor, Call::tool(name, arguments), context, timeout).await? {
        Answer::Tool(result) => Ok(result),
        other => panic!("not a tool result: {other:?}"),
    }
}

async fn run_command(
    supervisor: &Supervisor,
    text: &str,
    context: CallContext,
) -> Result<CommandResult, ErrorObject> {
    match make(supervisor, Call::command(text), context, None).await? {
        Answer::Command(result) => Ok(result),
        other => panic!("not a command result: {other:?}"),
    }
}

async fn call_method(
    supervisor: &Supervisor,
    method: &str,
    params: Value,
) -> Result<Value, ErrorObject> {
    make(
        supervisor,
        Call::method(method, params),
        CallContext::default(),
        None,
    )
    .await
    .map(Answer::into_value)
}

async fn run_hook(supervisor: &Supervisor, event: &str, payload: Value) -> HookOutcome {
    match make(
        supervisor,
        Call::hook(event, payload),
        CallContext::default(),
        None,
    )
    .await
    {
        Ok(Answer::Hook(outcome)) => outcome,
        other => panic!("not a hook outcome: {other:?}"),
    }
}

async fn echo(supervisor: &Supervisor, timeout: Option<Duration>) -> Result<Value, ErrorObject> {
    let result = call_tool(
        supervisor,
        "echo",
        Map::new(),
        CallContext::default(),
        timeout,
    )
    .await?;
    let outpost_protocol::methods::Content::Text { text } = &result.content[0] else {
        panic!("{result:?}")
    };
    Ok(serde_json::from_str(text).unwrap())
}

/// A call of the `slow` tool that returns at once.
async fn quick_call(supervisor: &Supervisor) -> Result<ToolResult, ErrorObject> {
    call_tool(
        supervisor,
        "slow",
        args(&json!({"ms": 0})),
        CallContext::default(),
        None,
    )
    .await
}

/// What the supervisor logs on this thread (a current-thread runtime runs every task
/// here), as the human format writes it.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        // tracing keeps each callsite's interest for the whole process, and while one
        // dispatcher is registered it asks only the registering thread's default: a
        // test thread with no subscriber that reaches the stderr drain's callsite first
        // would switch it off for this capture too (tokio-rs/tracing#3611; it failed a
        // `cargo test` run once). A second dispatcher, kept for the whole process and
        // never anyone's default, makes it ask every registered one.
        static ANCHOR: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || logs.clone())
            .finish()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn args(value: &Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn a_healthy_plugin_serves_every_kind_of_call_and_stops_cleanly() {
    let fixture = Fixture::new("alpha", "ok");
    let supervisor = start(&[&fixture]).await;
    assert_eq!(supervisor.state("alpha").unwrap().0, PluginState::Ready);

    let answer = echo(&supervisor, None).await.unwrap();
    assert_eq!(answer["name"], "echo");
    let budget = answer["context"]["timeoutMs"].as_u64().unwrap();
    assert!(
        budget > 0 && budget <= 10_000,
        "the call carries its remaining budget: {budget}"
    );

    let command = run_command(
        &supervisor,
        "/ALPHA-CMD  hello there",
        CallContext {
            is_authorized_sender: Some(true),
            ..CallContext::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(command.text, "ran /alpha-cmd with 'hello there'");
    let unmatched = run_command(&supervisor, "/nope", CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(
        unmatched.code,
        ErrorCode::NotFound,
        "the gateway's to handle"
    );
    assert_eq!(unmatched.data.unwrap()["kind"], "command");
    let unauthorized = run_command(&supervisor, "/alpha-cmd", CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(unauthorized.code, ErrorCode::Forbidden);

    let method = call_method(&supervisor, "alpha.status", json!({"x": 1}))
        .await
        .unwrap();
    assert_eq!(method, json!({"plugin": "alpha", "params": {"x": 1}}));

    let missing = call_tool(
        &supervisor,
        "nope",
        Map::new(),
        CallContext::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    let invalid = call_tool(
        &supervisor,
        "slow",
        args(&json!({"ms": "soon"})),
        CallContext::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(invalid.code, ErrorCode::InvalidParams);
    assert_eq!(invalid.data.unwrap()["errors"][0]["path"], "/ms");

    let snapshot = supervisor.snapshot();
    let keys: Vec<String> = snapshot
        .registrations
        .iter()
        .map(|r| format!("{}:{}", r.kind, r.key))
        .collect();
    assert_eq!(
        keys,
        [
            "tool:echo",
            "tool:slow",
            "tool:replayable",
            "tool:ask",
            "command:alpha-cmd",
            "gatewayMethod:alpha.status",
            "hook:before_prompt_build",
            "service:alpha-svc",
            "httpRoute:/alpha/open (prefix)",
            "httpRoute:/alpha/private"
        ]
    );
    assert!(snapshot.registrations.iter().all(|r| r.available));

    crate::shut_down(&supervisor).await;
    assert_eq!(supervisor.state("alpha").unwrap().0, PluginState::Stopped);
    fixture.assert_all_gone();
    let after = call_tool(
        &supervisor,
        "echo",
        Map::new(),
        CallContext::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(after.code, ErrorCode::Unavailable);
}

#[tokio::test]
async fn the_launch_is_scrubbed_rooted_grouped_and_limited() {
    let fixture = Fixture::new("launched", "ok")
        .env("GRANTED", "yes")
        .policy(&json!({"limits": {"openFiles": 64, "memoryMib": 4096}}));
    let supervisor = start(&[&fixture]).await;
    let process = echo(&supervisor, None).await.unwrap()["process"].clone();
    let env: Vec<&str> = process["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    // The allowlist, what the spec grants, and the protocol's own variables; nothing of
    // the test's environment (cargo sets CARGO_MANIFEST_DIR and CARGO_PKG_* for it).
    let allowed = |name: &str| {
        [
            "PATH",
            "HOME",
            "LANG",
            "TZ",
            "TMPDIR",
            "GRANTED",
            "OUTPOST_PLUGIN_ID",
            "OUTPOST_PROTOCOL",
            "OUTPOST_STATE_DIR",
        ]
        .contains(&name)
            || name.starts_with("LC_")
            || name.starts_with("FIXTURE_")
    };
    assert!(env.iter().all(|name| allowed(name)), "{env:?}");
    assert!(env.contains(&"GRANTED"), "{env:?}");
    assert!(!env.iter().any(|name| name.starts_with("CARGO")), "{env:?}");
    assert_eq!(process["pluginId"], "launched");
    assert_eq!(process["protocol"], outpost_protocol::PROTOCOL_VERSION);
    assert_eq!(
        Path::new(process["cwd"].as_str().unwrap()),
        fixture.dir.path().canonicalize().unwrap(),
        "cwd is the plugin root"
    );
    assert_eq!(
        process["ownGroup"], true,
        "the plugin leads its own process group"
    );
    assert_eq!(process["openFiles"], 64);
    assert_eq!(process["addressSpace"], 4096_u64 * 1024 * 1024);
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn crash_on_start_restarts_with_backoff_then_gives_up() {
    let fixture =
        Fixture::new("crashy", "crash-on-start").policy(&json!({"restart": {"maxCrashes": 2}}));
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "crashy", PluginState::Failed)
        .await
        .unwrap();
    assert!(reason.contains("crashed 3 times"), "{reason}");
    assert!(reason.contains("exit status 3"), "{reason}");
    assert!(
        reason.contains("crashing on start"),
        "the stderr tail is in the reason: {reason}"
    );
    let error = echo(&supervisor, None).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert_eq!(error.data.unwrap()["state"], "failed");
    assert_eq!(fixture.pids().len(), 3);

    // An operator restart gives it a fresh history (and it fails the same way).
    supervisor.restart_plugin("crashy").await.unwrap();
    wait_for_state(&supervisor, "crashy", PluginState::Failed).await;
    assert_eq!(fixture.pids().len(), 6);
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_crash_loop_of_one_plugin_leaves_the_others_alone() {
    let steady = Fixture::new("steady", "ok");
    let crashy =
        Fixture::new("crashy", "crash-on-start").policy(&json!({"restart": {"maxCrashes": 2}}));
    let supervisor = start(&[&steady, &crashy]).await;
    wait_for_state(&supervisor, "crashy", PluginState::Failed).await;
    assert_eq!(crashy.pids().len(), 3, "crashy ran three times");
    assert_eq!(supervisor.state("steady").unwrap().0, PluginState::Ready);
    assert_eq!(steady.pids().len(), 1, "steady was never restarted");
    assert!(echo(&supervisor, None).await.is_ok(), "steady still serves");
    crate::shut_down(&supervisor).await;
    steady.assert_all_gone();
    crashy.assert_all_gone();
}

#[tokio::test]
async fn a_crash_mid_call_fails_the_call_with_the_exit_and_the_plugin_comes_back() {
    let fixture = Fixture::new("fragile", "crash-after").env("FIXTURE_N", "2");
    let supervisor = start(&[&fixture]).await;
    let (_, mut events) = supervisor.subscribe();
    assert_eq!(echo(&supervisor, None).await.unwrap()["call"], 1);
    let error = echo(&supervisor, None).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::PluginExited, "{error}");
    let data = error.data.unwrap();
    assert_eq!(data["exitCode"], 1);
    assert!(
        data["stderrTail"]
            .to_string()
            .contains("crashing on call 2"),
        "{data}"
    );

    // A call made now waits for the restart within its deadline.
    assert_eq!(echo(&supervisor, None).await.unwrap()["call"], 1);
    let mut states = Vec::new();
    let mut changed = false;
    while let Ok(event) = events.try_recv() {
        match event {
            RegistryEvent::PluginState { state, .. } => states.push(state),
            _ => changed = true,
        }
    }
    assert_eq!(
        states,
        [
            PluginState::Restarting,
            PluginState::Starting,
            PluginState::Ready
        ]
    );
    assert!(
        !changed,
        "the same registrations after the restart: no registry change"
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn calls_during_a_restart_wait_or_fail_fast_with_a_retry_hint() {
    let fixture = Fixture::new("slowstart", "crash-after")
        .env("FIXTURE_N", "1")
        .policy(&json!({"restart": {"initialBackoffMs": 2000, "maxBackoffMs": 2000}}));
    let supervisor = start(&[&fixture]).await;
    assert_eq!(
        echo(&supervisor, None).await.unwrap_err().code,
        ErrorCode::PluginExited
    );
    wait_for_state(&supervisor, "slowstart", PluginState::Restarting).await;
    let error = echo(&supervisor, Some(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable, "{error}");
    let retry = error.data.unwrap()["retryAfterMs"].as_u64().unwrap();
    assert!(retry > 0 && retry <= 2000, "{retry}");
    // With room in its deadline, the call waits for the plugin and is served (and the
    // plugin crashes again on it: crash-after 1).
    let error = echo(&supervisor, Some(Duration::from_secs(15)))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::PluginExited);
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn only_replay_safe_calls_are_sent_again_after_a_crash() {
    let fixture = Fixture::new("replay", "crash-once");
    let supervisor = start(&[&fixture]).await;
    let result = call_tool(
        &supervisor,
        "replayable",
        Map::new(),
        CallContext::default(),
        None,
    )
    .await
    .unwrap();
    let outpost_protocol::methods::Content::Text { text } = &result.content[0] else {
        panic!()
    };
    assert!(
        text.contains("\"call\": 1"),
        "served by the second incarnation: {text}"
    );
    assert_eq!(fixture.pids().len(), 2);

    let fixture = Fixture::new("noreplay", "crash-once");
    let supervisor2 = start(&[&fixture]).await;
    assert_eq!(
        echo(&supervisor2, None).await.unwrap_err().code,
        ErrorCode::PluginExited
    );
    crate::shut_down(&supervisor).await;
    crate::shut_down(&supervisor2).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn exit_78_is_a_permanent_failure() {
    let fixture = Fixture::new("broken", "exit-78");
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "broken", PluginState::Failed)
        .await
        .unwrap();
    assert!(reason.contains("status 78"), "{reason}");
    assert!(reason.contains("no api key"), "{reason}");
    assert_eq!(fixture.pids().len(), 1, "never restarted");
    crate::shut_down(&supervisor).await;
}

#[tokio::test]
async fn a_hung_call_times_out_and_is_cancelled_and_the_plugin_stays_up() {
    let fixture = Fixture::new("hangs", "hang-on-call");
    let supervisor = start(&[&fixture]).await;
    let error = echo(&supervisor, Some(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Timeout, "{error}");
    assert_eq!(error.data.unwrap()["timeoutMs"], 200);
    assert_eq!(supervisor.state("hangs").unwrap().0, PluginState::Ready);
    let method = call_method(&supervisor, "hangs.status", json!({})).await;
    assert!(method.is_ok(), "other calls are still served: {method:?}");
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_plugin_that_stops_answering_pings_is_restarted_as_unresponsive() {
    let fixture = Fixture::new("deaf", "hang-on-ping")
        .policy(&json!({"health": {"intervalMs": 50, "timeoutMs": 100, "misses": 2}, "restart": {"maxCrashes": 0}}));
    let supervisor = Supervisor::start(vec![fixture.spec.clone()]).unwrap();
    let reason = wait_for_state(&supervisor, "deaf", PluginState::Failed)
        .await
        .unwrap();
    assert!(
        reason.contains("unresponsive: 2 pings in a row went unanswered"),
        "{reason}"
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_plugin_that_ignores_sigterm_and_eof_is_killed_at_the_end_of_the_escalation() {
    let fixture = Fixture::new("stubborn", "ignore-sigterm");
    let supervisor = start(&[&fixture]).await;
    crate::shut_down(&supervisor).await;
    assert_eq!(
        supervisor.state("stubborn").unwrap().0,
        PluginState::Stopped
    );
    fixture.assert_all_gone();

    let fixture = Fixture::new("lingering", "no-exit-on-eof");
    let supervisor = start(&[&fixture]).await;
    supervisor.stop_plugin("lingering").await.unwrap();
    fixture.assert_all_gone();
}

#[tokio::test]
async fn processes_a_plugin_starts_are_stopped_with_it() {
    let fixture = Fixture::new("parent", "grandchild");
    let supervisor = start(&[&fixture]).await;
    assert_eq!(fixture.pids().len(), 2);
    assert!(fixture.pids().iter().all(|&pid| alive(pid)));
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn garbage_on_stdout_is_survived() {
    let fixture = Fixture::new("noisy", "garbage");
    let supervisor = start(&[&fixture]).await;
    for _ in 0..3 {
        assert_eq!(echo(&supervisor, None).await.unwrap()["name"], "echo");
    }
    assert_eq!(supervisor.state("noisy").unwrap().0, PluginState::Ready);
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_malformed_result_fails_its_call_and_the_plugin_serves_on() {
    let fixture = Fixture::new("sloppy", "malformed-result");
    let supervisor = start(&[&fixture]).await;
    let error = echo(&supervisor, None).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InternalError, "{error}");
    assert!(
        error
            .message
            .starts_with("plugin `sloppy` answered `tool/invoke` with a malformed result: "),
        "{error}"
    );
    assert_eq!(error.data.as_ref().unwrap()["pluginId"], "sloppy");
    let ok = quick_call(&supervisor).await;
    assert!(ok.is_ok(), "the plugin serves on: {ok:?}");
    assert_eq!(supervisor.state("sloppy").unwrap().0, PluginState::Ready);
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn an_oversized_answer_is_discarded_and_fails_its_call_at_once() {
    let fixture = Fixture::new("huge", "oversized")
        .policy(&json!({"limits": {"maxMessageBytes": 1_048_576}}));
    let supervisor = start(&[&fixture]).await;
    // The answer's start names the call: it fails when the line is discarded, not at
    // its deadline, and says why.
    let error = echo(&supervisor, Some(Duration::from_mins(1)))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InternalError, "{error}");
    assert!(
        error.message.contains("could not be read")
            && error.message.contains("longer than the 1048576-byte limit"),
        "{error}"
    );
    assert!(
        error.data.as_ref().unwrap()["unreadable"].is_string(),
        "{error:?}"
    );
    let ok = quick_call(&supervisor).await;
    assert!(ok.is_ok(), "the connection goes on: {ok:?}");
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_stderr_flood_does_not_block_the_plugin() {
    let fixture = Fixture::new("chatty", "flood-stderr").env("FIXTURE_N", "4000000");
    let supervisor = start(&[&fixture]).await;
    for _ in 0..2 {
        assert_eq!(echo(&supervisor, None).await.unwrap()["name"], "echo");
    }
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_plugin_answering_as_someone_else_is_refused() {
    let fixture = Fixture::new("honest", "wrong-id");
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "honest", PluginState::Failed)
        .await
        .unwrap();
    assert!(
        reason.contains("answered as plugin `someone-else`"),
        "{reason}"
    );
    assert_eq!(fixture.pids().len(), 1, "never restarted");
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn an_undeclared_tool_is_rejected_and_the_rest_is_served() {
    let fixture = Fixture::new("sly", "undeclared-tool");
    let supervisor = start(&[&fixture]).await;
    assert_eq!(supervisor.state("sly").unwrap().0, PluginState::Ready);
    let snapshot = supervisor.snapshot();
    let rejected = &snapshot.plugins[0].rejected;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].code, RejectionCode::NotDeclared);
    assert_eq!(rejected[0].key.as_deref(), Some("sneaky"));
    let error = call_tool(
        &supervisor,
        "sneaky",
        Map::new(),
        CallContext::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(error.code, ErrorCode::NotFound);
    assert!(echo(&supervisor, None).await.is_ok());
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn too_many_registrations_fail_the_plugin_with_one_clear_error() {
    let fixture = Fixture::new("greedy", "many-undeclared")
        .env("FIXTURE_N", "2000")
        .policy(&json!({"limits": {"maxRegistrations": 1000}}));
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "greedy", PluginState::Failed)
        .await
        .unwrap();
    assert!(
        reason.contains("it made 2010 registrations, over the limit of 1000 per plugin")
            && reason.contains("outpost.plugins.greedy.limits.maxRegistrations"),
        "{reason}"
    );
    assert_eq!(fixture.pids().len(), 1, "never restarted");
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn thousands_of_rejections_are_summarised_in_initialized() {
    // 5,000 undeclared tools: every rejection explained made `initialized` larger than
    // the plugin's own registrations.
    let fixture = Fixture::new("sly", "many-undeclared").env("FIXTURE_N", "5000");
    let supervisor = start(&[&fixture]).await;
    assert_eq!(supervisor.state("sly").unwrap().0, PluginState::Ready);
    let snapshot = supervisor.snapshot();
    let rejected = &snapshot.plugins[0].rejected;
    assert_eq!(rejected.len(), 5000);
    assert!(
        rejected[4999].reason.contains("is not declared"),
        "the registry keeps every reason: {:?}",
        rejected[4999]
    );
    let events = std::fs::read_to_string(fixture.dir.path().join("events")).unwrap();
    let line = events
        .lines()
        .find(|l| l.starts_with("initialized "))
        .unwrap();
    let bytes: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(line.ends_with("5000 rejected"), "{line}");
    assert!(bytes < 5000 * 100, "{line}");
    assert!(echo(&supervisor, None).await.is_ok());
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn acknowledgements_larger_than_the_line_limit_fail_the_handshake_instead() {
    // Each short registration gets a longer rejection: 100 KB of registrations take
    // 280 KB to acknowledge.
    let fixture = Fixture::new("wordy", "many-unknown-hooks")
        .env("FIXTURE_N", "3000")
        .policy(&json!({"limits": {"maxMessageBytes": 140_000}}));
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "wordy", PluginState::Failed)
        .await
        .unwrap();
    assert!(
        reason.contains("over its limits.maxMessageBytes of 140000"),
        "{reason}"
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn log_notifications_are_rate_limited_cut_and_kept_on_one_line() {
    // Before: every notification was logged whole, 16 KiB of fields each, and its
    // message could start a line of its own.
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let fixture = Fixture::new("loud", "log-flood").env("FIXTURE_N", "2000");
    let supervisor = start(&[&fixture]).await;
    let events = fixture.dir.path().join("events");
    tokio::time::timeout(SETTLE, async {
        while !std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("flooded")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the plugin flooded");
    // The notifications are read after the plugin wrote them all.
    assert!(echo(&supervisor, None).await.is_ok());
    // Its stderr is drained apart, in no order with its stdout: wait for its line.
    tokio::time::timeout(SETTLE, async {
        while !logs.text().contains("stderr ok") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the plugin's stderr line was logged");
    crate::shut_down(&supervisor).await;
    let text = logs.text();
    let flood_lines = text.lines().filter(|l| l.contains("flood ")).count();
    assert!(
        (100..=1000).contains(&flood_lines),
        "{flood_lines} of 2000 notifications logged"
    );
    assert!(text.contains("`log` notifications were not logged (rate limit)"));
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a forged line"
    );
    // Neither stderr nor a record can move the cursor back or turn the text around.
    assert!(
        text.contains(r"stderr ok\rFORGED-CR outpost: fine \u{202e}evil"),
        "{text}"
    );
    assert!(text.contains(r"record ok\rFORGED-CR \u{2066}hidden"));
    assert!(!text.contains(['\r', '\u{202e}', '\u{2066}']));
    assert!(text.len() < 8 * 1024 * 1024, "{} bytes of log", text.len());
    fixture.assert_all_gone();
}

#[tokio::test]
async fn calls_waiting_for_a_restarting_plugin_are_bounded() {
    // Before: every call waited, however many (200,000 took 568 MB).
    let fixture = Fixture::new("down", "crash-after")
        .env("FIXTURE_N", "1")
        .policy(&json!({
            "restart": {"initialBackoffMs": 1500, "maxBackoffMs": 1500, "maxCrashes": 100},
            "limits": {"maxQueuedRequests": 4},
        }));
    let supervisor = start(&[&fixture]).await;
    // Its first call crashes it; it comes back after 1.5 s.
    assert!(echo(&supervisor, None).await.is_err());
    wait_for_state(&supervisor, "down", PluginState::Restarting)
        .await
        .unwrap();
    let calls = (0..10).map(|_| echo(&supervisor, Some(Duration::from_secs(4))));
    let outcomes = futures_util::future::join_all(calls).await;
    let refused: Vec<&ErrorObject> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .filter(|error| error.message.contains("calls already wait for it"))
        .collect();
    assert_eq!(refused.len(), 6, "{outcomes:?}");
    assert!(
        refused
            .iter()
            .all(|error| error.code == ErrorCode::Unavailable)
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn a_plugin_that_never_answers_initialize_times_out_and_is_given_up_on() {
    let fixture = Fixture::new("mute", "never-initialize")
        .policy(&json!({"timeouts": {"handshakeMs": 1000}, "restart": {"maxCrashes": 1}}));
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "mute", PluginState::Failed)
        .await
        .unwrap();
    assert!(reason.contains("crashed 2 times"), "{reason}");
    assert!(
        reason.contains("did not answer `initialize` within 1000 ms"),
        "{reason}"
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn an_unreadable_initialize_answer_fails_the_handshake_naming_the_line() {
    let fixture = Fixture::new("wordy", "oversized-initialize").policy(&json!({
        "timeouts": {"handshakeMs": 1000},
        "restart": {"maxCrashes": 1},
        "limits": {"maxMessageBytes": 65_536},
    }));
    let supervisor = start(&[&fixture]).await;
    let reason = wait_for_state(&supervisor, "wordy", PluginState::Failed)
        .await
        .unwrap();
    assert!(
        reason.contains("answered `initialize` with a line that could not be read")
            && reason.contains("longer than the 65536-byte limit"),
        "{reason}"
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn the_concurrency_limit_queues_then_refuses() {
    let fixture = Fixture::new("narrow", "ok")
        .policy(&json!({"limits": {"maxConcurrentRequests": 1, "maxQueuedRequests": 1}}));
    let supervisor = start(&[&fixture]).await;
    let slow = || {
        call_tool(
            &supervisor,
            "slow",
            args(&json!({"ms": 500})),
            CallContext::default(),
            None,
        )
    };
    let (a, b, c) = tokio::join!(slow(), slow(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        slow().await
    });
    let codes: Vec<Option<ErrorCode>> = [a, b, c]
        .into_iter()
        .map(|r| r.err().map(|e| e.code))
        .collect();
    assert_eq!(codes, [None, None, Some(ErrorCode::Overloaded)]);
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn hooks_run_by_priority_and_their_results_merge() {
    let low = Fixture::new("low", "ok").env("FIXTURE_PRIORITY", "1");
    let high = Fixture::new("high", "ok").env("FIXTURE_PRIORITY", "10");
    // Two fixtures register the same tool names: the second loses them (first wins)
    // but keeps its hook.
    let supervisor = start(&[&low, &high]).await;
    let outcome = run_hook(&supervisor, "before_prompt_build", json!({})).await;
    assert_eq!(outcome.result["prependContext"], "from high\n\nfrom low");
    assert_eq!(
        outcome
            .runs
            .iter()
            .map(|r| r.plugin.as_str())
            .collect::<Vec<_>>(),
        ["high", "low"]
    );
    let rejected: Vec<RejectionCode> = supervisor
        .snapshot()
        .plugins
        .iter()
        .flat_map(|p| p.rejected.iter().map(|r| r.code))
        .collect();
    assert_eq!(
        rejected,
        [RejectionCode::Conflict; 4],
        "one plugin lost the four tools"
    );
    crate::shut_down(&supervisor).await;
    low.assert_all_gone();
    high.assert_all_gone();
}

/// A handler that uses up the event's deadline leaves the next ones unsent: they are
/// reported as not run, not blamed for a timeout, nor counted as one.
#[tokio::test]
async fn handlers_after_one_that_used_the_deadline_up_are_not_blamed() {
    let stuck = Fixture::hooks(
        "stuck",
        &json!([{"kind": "hook", "event": "before_prompt_build", "priority": 10}]),
        &json!({"before_prompt_build": {"$sleepMs": 2000}}),
    );
    let next = Fixture::hooks(
        "next",
        &json!([{"kind": "hook", "event": "before_prompt_build", "priority": 1}]),
        &json!({}),
    );
    let supervisor = start(&[&stuck, &next]).await;
    let outcome = match make(
        &supervisor,
        Call::hook("before_prompt_build", json!({})),
        CallContext::default(),
        Some(Duration::from_millis(300)),
    )
    .await
    {
        Ok(Answer::Hook(outcome)) => outcome,
        other => panic!("not a hook outcome: {other:?}"),
    };
    let error_of = |plugin: &str| match &outcome
        .runs
        .iter()
        .find(|r| r.plugin == plugin)
        .unwrap()
        .outcome
    {
        HookRunOutcome::Error(error) => error.clone(),
        HookRunOutcome::Result(result) => panic!("{plugin}: {result:?}"),
    };
    assert_eq!(error_of("stuck").code, ErrorCode::Timeout);
    let skipped = error_of("next");
    assert!(skipped.message.contains("was not run"), "{skipped:?}");
    assert_eq!(skipped.data.as_ref().unwrap()["notSent"], true);
    assert!(
        next.hook_payloads().is_empty(),
        "nothing was sent to `next`"
    );
    crate::shut_down(&supervisor).await;
    stuck.assert_all_gone();
    next.assert_all_gone();
}

/// Who owns the tool `echo` and the command `/mystatus`, and what the other plugin's
/// rejections say.
fn owners(supervisor: &Supervisor) -> (String, String) {
    let snapshot = supervisor.snapshot();
    let owner = |key: &str| {
        snapshot
            .registrations
            .iter()
            .find(|r| r.key == key)
            .map(|r| r.plugin.clone())
            .unwrap_or_default()
    };
    (owner("echo"), owner("mystatus"))
}

fn conflicts_of(supervisor: &Supervisor, plugin: &str) -> Vec<String> {
    rejected_of(supervisor, plugin)
        .into_iter()
        .filter(|(code, _)| *code == RejectionCode::Conflict)
        .map(|(_, reason)| reason)
        .collect()
}

/// A call made while the plugin that declares its tool is still starting waits for it,
/// within the call's deadline, instead of failing at once with `-32003`.
#[tokio::test]
async fn a_call_made_while_its_plugin_starts_waits_for_it() {
    let fixture = Fixture::new("late", "ok").env("FIXTURE_INIT_DELAY_MS", "300");
    let supervisor = Supervisor::start(vec![fixture.spec.clone()]).unwrap();
    // At once, while the handshake is still on.
    let answer = echo(&supervisor, Some(SETTLE)).await;
    assert!(answer.is_ok(), "{answer:?}");
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

#[tokio::test]
async fn contested_keys_go_to_the_first_in_precedence_whichever_handshake_ends_first() {
    // `first` comes first in discovery order. Each order of handshakes, three times.
    for (round, delayed) in ["first", "second", "first", "second", "first", "second"]
        .into_iter()
        .enumerate()
    {
        let make = |id: &str| {
            let fixture = Fixture::new(id, "ok").env("FIXTURE_COMMAND", "mystatus");
            if id == delayed {
                fixture.env("FIXTURE_INIT_DELAY_MS", "300")
            } else {
                fixture
            }
        };
        let (first, second) = (make("first"), make("second"));
        let supervisor = Supervisor::start(vec![first.spec.clone(), second.spec.clone()]).unwrap();
        let (_, mut events) = supervisor.subscribe();
        assert!(supervisor.wait_settled(SETTLE).await);
        assert_eq!(
            owners(&supervisor),
            ("first".to_owned(), "first".to_owned()),
            "round {round}, {delayed} delayed"
        );
        // The loser runs on with those registrations rejected, naming the winner.
        assert_eq!(supervisor.state("second").unwrap().0, PluginState::Ready);
        let conflicts = conflicts_of(&supervisor, "second");
        assert_eq!(
            conflicts.len(),
            5,
            "four tools and the command: {conflicts:?}"
        );
        assert!(
            conflicts.iter().all(|r| r.contains("plugin `first`")),
            "{conflicts:?}"
        );
        let authorized = CallContext {
            is_authorized_sender: Some(true),
            ..CallContext::default()
        };
        let answer = run_command(&supervisor, "/mystatus", authorized)
            .await
            .unwrap();
        assert_eq!(answer.text, "first ran /mystatus");
        // When the winner came up second, it took the keys, and the event says from whom.
        let taken: Vec<(String, Option<String>)> = std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|event| match event {
                RegistryEvent::Registered {
                    plugin,
                    key,
                    replaces,
                    ..
                } if key == "mystatus" => Some((plugin, replaces)),
                _ => None,
            })
            .collect();
        let expected = if delayed == "first" {
            vec![
                ("second".to_owned(), None),
                ("first".to_owned(), Some("second".to_owned())),
            ]
        } else {
            vec![("first".to_owned(), None)]
        };
        assert_eq!(taken, expected, "round {round}, {delayed} delayed");

        // A restart of either keeps the owners.
        for plugin in ["first", "second"] {
            supervisor.restart_plugin(plugin).await.unwrap();
            assert!(supervisor.wait_settled(SETTLE).await);
            wait_for_state(&supervisor, plugin, PluginState::Ready).await;
            assert_eq!(
                owners(&supervisor),
                ("first".to_owned(), "first".to_owned())
            );
        }
        crate::shut_down(&supervisor).await;
        first.assert_all_gone();
        second.assert_all_gone();
    }
}

#[tokio::test]
async fn a_reload_moves_contested_keys_with_the_precedence_and_a_removed_winner_frees_them() {
    let first = Fixture::new("first", "ok").env("FIXTURE_COMMAND", "mystatus");
    let second = Fixture::new("second", "ok").env("FIXTURE_COMMAND", "mystatus");
    let supervisor = start(&[&first, &second]).await;
    assert_eq!(
        owners(&supervisor),
        ("first".to_owned(), "first".to_owned())
    );
    // Discovery order reversed: same plugins, unchanged, new owners.
    let applied = supervisor
        .apply(vec![second.spec.clone(), first.spec.clone()])
        .await
        .unwrap();
    assert_eq!(applied.unchanged, ["second", "first"]);
    assert_eq!(
        owners(&supervisor),
        ("second".to_owned(), "second".to_owned())
    );
    assert!(
        conflicts_of(&supervisor, "first")
            .iter()
            .all(|r| r.contains("plugin `second`"))
    );
    // The winner removed: the other plugin gets the keys back.
    supervisor.apply(vec![first.spec.clone()]).await.unwrap();
    assert_eq!(
        owners(&supervisor),
        ("first".to_owned(), "first".to_owned())
    );
    assert!(conflicts_of(&supervisor, "first").is_empty());
    crate::shut_down(&supervisor).await;
    first.assert_all_gone();
    second.assert_all_gone();
}

impl Fixture {
    /// A fixture with no tools (so several run side by side) whose hooks are `hooks`
    /// answering `answers` by key (FIXTURE_HOOKS in fixture.py).
    fn hooks(id: &str, hooks: &Value, answers: &Value) -> Self {
        Self::new(id, "ok")
            .env("FIXTURE_NO_TOOLS", "1")
            .env("FIXTURE_HOOKS", &hooks.to_string())
            .env("FIXTURE_HOOK_ANSWERS", &answers.to_string())
    }

    /// Lets the plugin write in `dir` too.
    fn writable(mut self, dir: &Path) -> Self {
        let sandbox = &mut self.spec.launch.sandbox;
        if let Some(filesystem) = sandbox.filesystem.as_mut() {
            filesystem.write.push(dir.to_owned());
        }
        self
    }

    /// The payloads its hook handlers received, as "<key> <payload>".
    fn hook_payloads(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("events"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.strip_prefix("hook "))
            .map(str::to_owned)
            .collect()
    }
}

fn rejected_of(supervisor: &Supervisor, plugin: &str) -> Vec<(RejectionCode, String)> {
    supervisor
        .snapshot()
        .plugins
        .into_iter()
        .find(|p| p.id == plugin)
        .unwrap()
        .rejected
        .into_iter()
        .map(|r| (r.code, r.reason))
        .collect()
}

fn run_plugins(outcome: &HookOutcome) -> Vec<String> {
    outcome
        .runs
        .iter()
        .map(|run| match &run.id {
            Some(id) => format!("{}:{id}", run.plugin),
            None => run.plugin.clone(),
        })
        .collect()
}

#[tokio::test]
async fn hooks_run_as_openclaw_runs_them() {
    let rendezvous = tempfile::tempdir().unwrap();
    let a = Fixture::hooks(
        "a",
        &json!([
            {"kind": "hook", "event": "before_tool_call", "priority": 10},
            {"kind": "hook", "event": "before_tool_call", "id": "reads", "priority": 9, "matcher": ["read"]},
            {"kind": "hook", "event": "message_sending", "priority": 10, "timeoutMs": 100},
            {"kind": "hook", "event": "inbound_claim", "priority": 10},
            {"kind": "hook", "event": "message_received"},
        ]),
        &json!({
            "before_tool_call": {"params": {"cmd": "ls -l"}},
            "before_tool_call:reads": {"params": {"path": "/etc"}},
            "message_sending": {"$sleepMs": 3000, "then": {"content": "too late"}},
            "inbound_claim": {"handled": false},
            "message_received": {"$rendezvous": rendezvous.path().display().to_string()},
        }),
    )
    .writable(rendezvous.path());
    let b = Fixture::hooks(
        "b",
        &json!([
            {"kind": "hook", "event": "before_tool_call", "priority": 5},
            {"kind": "hook", "event": "before_tool_call", "id": "audit", "priority": 5},
            {"kind": "hook", "event": "message_sending", "priority": 5, "timeoutMs": 60000},
            {"kind": "hook", "event": "inbound_claim", "priority": 5},
            {"kind": "hook", "event": "message_received"},
        ]),
        &json!({
            "before_tool_call:audit": {"block": true, "blockReason": "audit says no"},
            "message_sending": {"$sleepMs": 3000, "then": {"content": "also too late"}},
            "inbound_claim": {"handled": true, "reply": {"text": "b has it"}},
            "message_received": {"$rendezvous": rendezvous.path().display().to_string()},
        }),
    )
    .writable(rendezvous.path());
    // `b` registered a 60 s budget for message_sending; the operator's hooks.timeoutMs
    // overrides it.
    let mut b = b;
    b.spec.hooks.timeout_ms = Some(100);
    let c = Fixture::hooks(
        "c",
        &json!([
            {"kind": "hook", "event": "before_tool_call", "priority": 1},
            {"kind": "hook", "event": "message_sending", "priority": 1},
            {"kind": "hook", "event": "inbound_claim", "priority": 1},
        ]),
        &json!({
            "message_sending": {"content": "from c"},
            "inbound_claim": {"handled": true, "reply": {"text": "c has it"}},
        }),
    );
    let supervisor = start(&[&a, &b, &c]).await;
    for plugin in ["a", "b", "c"] {
        assert!(rejected_of(&supervisor, plugin).is_empty(), "{plugin}");
    }

    // Modifying, with a terminal result: each handler sees the params as changed so
    // far; b's second handler blocks; c never runs. a's `reads` handler is for `read`.
    let outcome = run_hook(
        &supervisor,
        "before_tool_call",
        json!({"toolName": "exec", "params": {"cmd": "ls"}}),
    )
    .await;
    assert_eq!(run_plugins(&outcome), ["a", "b", "b:audit"]);
    assert_eq!(outcome.result["block"], true);
    assert_eq!(outcome.result["blockReason"], "audit says no");
    assert_eq!(outcome.result["params"], json!({"cmd": "ls -l"}));
    assert_eq!(outcome.decided_by.as_deref(), Some("b"));
    assert_eq!(
        b.hook_payloads(),
        [
            r#"before_tool_call {"params": {"cmd": "ls -l"}, "toolName": "exec"}"#,
            r#"before_tool_call:audit {"params": {"cmd": "ls -l"}, "toolName": "exec"}"#,
        ]
    );
    assert!(c.hook_payloads().is_empty(), "{:?}", c.hook_payloads());

    // Timeouts: a's own 100 ms and b's operator hooks.timeoutMs skip them (logged); the
    // chain goes on to c.
    let outcome = run_hook(&supervisor, "message_sending", json!({"content": "hi"})).await;
    assert_eq!(run_plugins(&outcome), ["a", "b", "c"]);
    let codes: Vec<Option<ErrorCode>> = outcome
        .runs
        .iter()
        .map(|run| match &run.outcome {
            HookRunOutcome::Error(error) => Some(error.code),
            HookRunOutcome::Result(_) => None,
        })
        .collect();
    assert_eq!(
        codes,
        [Some(ErrorCode::Timeout), Some(ErrorCode::Timeout), None]
    );
    assert_eq!(outcome.result["content"], "from c");

    // Claiming: a declines, b claims, c is never asked.
    let outcome = run_hook(&supervisor, "inbound_claim", json!({"content": "hello"})).await;
    assert_eq!(run_plugins(&outcome), ["a", "b"]);
    assert_eq!(outcome.result["reply"]["text"], "b has it");
    assert_eq!(outcome.decided_by.as_deref(), Some("b"));

    // Observing: both at once (each waits for the other to have started), results
    // recorded but not merged.
    let outcome = run_hook(&supervisor, "message_received", json!({})).await;
    assert!(outcome.result.is_empty());
    for run in &outcome.runs {
        assert_eq!(
            run.outcome,
            HookRunOutcome::Result(Some(args(&json!({"sawPeer": true})))),
            "{}",
            run.plugin
        );
    }
    crate::shut_down(&supervisor).await;
    for fixture in [&a, &b, &c] {
        fixture.assert_all_gone();
    }
}

#[tokio::test]
async fn conversation_content_reaches_only_plugins_granted_it() {
    let hooks = json!([
        {"kind": "hook", "event": "llm_input"},
        {"kind": "hook", "event": "message_received"},
    ]);
    // Not bundled, and the operator said nothing: no conversation access.
    let mut outsider = Fixture::hooks("outsider", &hooks, &json!({}));
    outsider.spec.hooks.allow_conversation_access = None;
    let granted = Fixture::hooks("granted", &hooks, &json!({}));
    let mut bundled = Fixture::hooks("bundled", &hooks, &json!({}));
    bundled.spec.bundled = true;
    bundled.spec.hooks.allow_conversation_access = None;
    let mut refused = Fixture::hooks("refused", &hooks, &json!({}));
    refused.spec.bundled = true;
    refused.spec.hooks.allow_conversation_access = Some(false);
    let supervisor = start(&[&outsider, &granted, &bundled, &refused]).await;

    // Conversation hooks are refused, with the reason and the key that grants them.
    for (plugin, says) in [
        ("outsider", "allowConversationAccess: true"),
        ("refused", "allowConversationAccess to false"),
    ] {
        let rejected = rejected_of(&supervisor, plugin);
        assert_eq!(rejected.len(), 1, "{plugin}: {rejected:?}");
        assert_eq!(rejected[0].0, RejectionCode::Forbidden);
        assert!(rejected[0].1.contains("`llm_input`"), "{rejected:?}");
        assert!(rejected[0].1.contains(says), "{rejected:?}");
        assert_eq!(supervisor.state(plugin).unwrap().0, PluginState::Ready);
    }
    for plugin in ["granted", "bundled"] {
        assert!(rejected_of(&supervisor, plugin).is_empty(), "{plugin}");
    }
    let outcome = run_hook(&supervisor, "llm_input", json!({"prompt": "my secret"})).await;
    let mut ran = run_plugins(&outcome);
    ran.sort();
    assert_eq!(ran, ["bundled", "granted"]);

    // Other hooks reach everyone, without the conversation fields for those not granted.
    let payload = json!({"content": "hi", "prompt": "my secret", "messages": ["earlier"], "systemPrompt": "s"});
    let outcome = run_hook(&supervisor, "message_received", payload).await;
    assert_eq!(outcome.runs.len(), 4);
    for fixture in [&outsider, &refused] {
        assert_eq!(
            fixture.hook_payloads(),
            [r#"message_received {"content": "hi"}"#],
            "{}",
            fixture.spec.id
        );
    }
    for fixture in [&granted, &bundled] {
        let payloads = fixture.hook_payloads();
        assert_eq!(payloads.len(), 2, "{payloads:?}");
        assert!(
            payloads.iter().all(|p| p.contains("my secret")),
            "{payloads:?}"
        );
    }
    crate::shut_down(&supervisor).await;
    for fixture in [&outsider, &granted, &bundled, &refused] {
        fixture.assert_all_gone();
    }
}

#[tokio::test]
async fn cancelled_callers_cancel_the_plugin_call() {
    let fixture = Fixture::new("cancel", "ok");
    let supervisor = start(&[&fixture]).await;
    let call = call_tool(
        &supervisor,
        "slow",
        args(&json!({"ms": 60_000})),
        CallContext::default(),
        None,
    );
    // The caller goes away: the plugin gets `$/cancel` and stays usable.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), call)
            .await
            .is_err()
    );
    let events = fixture.dir.path().join("events");
    tokio::time::timeout(SETTLE, async {
        while !std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("cancelled")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the plugin saw the cancellation");
    assert!(echo(&supervisor, None).await.is_ok());
    // The dropped call is counted, as `cancelled`.
    let (text, scrape) = scrape_metrics(&supervisor);
    let cancelled = [
        ("plugin", "cancel"),
        ("kind", "tool"),
        ("outcome", "cancelled"),
    ];
    assert_eq!(
        sample(&scrape, "outpost_calls_total", &cancelled),
        Some(1.0),
        "{text}"
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}

/// Asks the host through the fixture's `ask` tool: the host's whole answer
/// (`{"result": ...}` or `{"error": ...}`).
async fn ask(supervisor: &Supervisor, method: &str, params: Value) -> Value {
    let result = call_tool(
        supervisor,
        "ask",
        args(&json!({"method": method, "params": params})),
        CallContext::default(),
        None,
    )
    .await
    .expect("the ask tool answers");
    let outpost_protocol::methods::Content::Text { text } = &result.content[0] else {
        panic!("{result:?}")
    };
    serde_json::from_str(text).unwrap()
}

/// A gateway with one method of its own, `gw.echo`, that records who asked.
#[derive(Clone, Default)]
struct EchoGateway {
    asked: Arc<Mutex<Vec<MethodRequest>>>,
}

impl Gateway for EchoGateway {
    fn call_method(&self, request: MethodRequest) -> GatewayFuture<'_, Result<Value, ErrorObject>> {
        Box::pin(async move {
            let answer = match request.method.as_str() {
                "gw.echo" => Ok(json!({"gateway": true, "params": request.params})),
                other => Err(ErrorObject::new(
                    ErrorCode::NotFound,
                    format!("the test gateway has no `{other}`"),
                )),
            };
            self.asked.lock().unwrap().push(request);
            answer
        })
    }

    fn config(&self, plugin: &str) -> GatewayFuture<'_, Result<Option<Value>, ErrorObject>> {
        let shared = (plugin == "asker").then(|| json!({"agents": {"default": "main"}}));
        Box::pin(async move { Ok(shared) })
    }
}

/// A plugin allowed another's methods takes at most half of its call slots and queue:
/// the gateway's own calls still get through while it calls in a loop.
#[tokio::test]
async fn calls_from_another_plugin_leave_the_gateway_half_the_slots() {
    let mut asker = Fixture::new("asker", "ok");
    asker.spec = asker.spec.with_host_methods(["other.status"]);
    let other = Fixture::new("other", "ok")
        .env("FIXTURE_NO_TOOLS", "1")
        .env("FIXTURE_METHOD_DELAY_MS", "1500")
        .policy(&json!({"limits": {"maxConcurrentRequests": 2, "maxQueuedRequests": 2}}));
    let supervisor = start(&[&asker, &other]).await;
    let asks: Vec<_> = (0..6)
        .map(|n| {
            ask(
                &supervisor,
                "host/callMethod",
                json!({"method": "other.status", "params": {"n": n}}),
            )
        })
        .collect();
    let gateway = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        supervisor
            .call(Call::method("other.status", json!({"from": "gateway"})))
            .await
    };
    let (answers, own) = tokio::join!(futures_util::future::join_all(asks), gateway);
    let own = own.expect("the gateway's call gets a slot");
    assert_eq!(
        own,
        Answer::Value(json!({"plugin": "other", "params": {"from": "gateway"}}))
    );
    // One in flight and one waiting in the plugins' share; the rest refused at once.
    let served = answers.iter().filter(|a| a["result"].is_object()).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a["error"]["code"] == -32009)
        .collect();
    assert_eq!(served, 2, "{answers:?}");
    assert_eq!(refused.len(), 4, "{answers:?}");
    assert!(
        refused[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("calls from other plugins"),
        "{refused:?}"
    );
    crate::shut_down(&supervisor).await;
    asker.assert_all_gone();
    other.assert_all_gone();
}

#[tokio::test]
async fn host_call_method_reaches_a_plugin_method_or_else_the_gateway() {
    let mut asker = Fixture::new("asker", "ok");
    asker.spec = asker.spec.with_host_methods(["gw.*", "other.status"]);
    // Only `asker` has tools (two plugins with the same tools would race for them).
    let other = Fixture::new("other", "ok").env("FIXTURE_NO_TOOLS", "1");
    let gateway = EchoGateway::default();
    let supervisor = Supervisor::builder()
        .gateway(gateway.clone())
        .start(vec![asker.spec.clone(), other.spec.clone()])
        .unwrap();
    assert!(supervisor.wait_settled(SETTLE).await);

    // Another plugin's method: routed to it.
    let answer = ask(
        &supervisor,
        "host/callMethod",
        json!({"method": "other.status", "params": {"n": 1}}),
    )
    .await;
    assert_eq!(
        answer["result"],
        json!({"plugin": "other", "params": {"n": 1}})
    );

    // A method no plugin registered: the gateway's, with who asked and a deadline.
    let answer = ask(
        &supervisor,
        "host/callMethod",
        json!({"method": "gw.echo", "params": [7]}),
    )
    .await;
    assert_eq!(answer["result"], json!({"gateway": true, "params": [7]}));
    let asked = gateway.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].plugin, "asker");
    assert!(asked[0].deadline > std::time::Instant::now());

    // The gateway's own errors pass through; the grant is checked first.
    let answer = ask(
        &supervisor,
        "host/callMethod",
        json!({"method": "gw.nothing"}),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32008, "{answer}");
    let answer = ask(
        &supervisor,
        "host/callMethod",
        json!({"method": "billing.charge"}),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
    assert_eq!(
        gateway.asked.lock().unwrap().len(),
        2,
        "a refused method never reaches the gateway"
    );
    crate::shut_down(&supervisor).await;

    // Without a gateway, a method nobody has is "not found", saying so.
    let supervisor = start(&[&asker]).await;
    let answer = ask(&supervisor, "host/callMethod", json!({"method": "gw.echo"})).await;
    assert_eq!(answer["error"]["code"], -32008, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the gateway offers no method"),
        "{answer}"
    );
    crate::shut_down(&supervisor).await;
    asker.assert_all_gone();
    other.assert_all_gone();
}

#[tokio::test]
async fn a_request_sent_the_moment_initialized_arrives_is_answered() {
    // protocol.md §5.3: a plugin may send requests as soon as it reads `initialized`.
    for round in 0..5 {
        let fixture = Fixture::new("eager", "ask-at-once");
        let supervisor = start(&[&fixture]).await;
        let events = fixture.dir.path().join("events");
        let outcome = tokio::time::timeout(SETTLE, async {
            loop {
                let text = std::fs::read_to_string(&events).unwrap_or_default();
                if let Some(line) = text.lines().find(|l| l.starts_with("early ")) {
                    return line.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the plugin recorded the answer");
        assert_eq!(outcome, "early ok", "round {round}");
        crate::shut_down(&supervisor).await;
        fixture.assert_all_gone();
    }
}

#[tokio::test]
async fn apply_keeps_the_unchanged_restarts_the_changed_stops_the_removed_starts_the_new() {
    let same = Fixture::new("same", "ok");
    let changed = Fixture::new("changed", "ok");
    let removed = Fixture::new("removed", "ok");
    let added = Fixture::new("added", "ok");
    let supervisor = start(&[&same, &changed, &removed]).await;
    let pid_of = |id: &str| {
        supervisor
            .snapshot()
            .plugins
            .into_iter()
            .find(|p| p.id == id)
            .and_then(|p| p.pid)
    };
    let same_pid = pid_of("same").unwrap();
    let changed_pid = pid_of("changed").unwrap();
    let (_, mut events) = supervisor.subscribe();

    let changed_spec = changed
        .spec
        .clone()
        .with_config(args(&json!({"mode": "new"})));
    let applied = supervisor
        .apply(vec![same.spec.clone(), changed_spec, added.spec.clone()])
        .await
        .unwrap();
    assert_eq!(applied.unchanged, ["same"]);
    assert_eq!(applied.restarted, ["changed"]);
    assert_eq!(applied.stopped, ["removed"]);
    assert_eq!(applied.started, ["added"]);
    assert!(supervisor.wait_settled(SETTLE).await);

    // The unchanged plugin: the same process, never stopped, never handshaken again.
    assert_eq!(pid_of("same"), Some(same_pid));
    assert_eq!(same.pids().len(), 1);
    assert_eq!(supervisor.state("same").unwrap().0, PluginState::Ready);
    // The changed one runs a new process with the new config; the old one is gone.
    let new_pid = pid_of("changed").unwrap();
    assert_ne!(new_pid, changed_pid);
    assert!(!alive(i32::try_from(changed_pid).unwrap()));
    assert_eq!(supervisor.spec("changed").unwrap().config["mode"], "new");
    // The removed one is gone with its registrations; the new one serves.
    removed.assert_all_gone();
    assert!(supervisor.state("removed").is_none());
    assert!(
        supervisor
            .snapshot()
            .registrations
            .iter()
            .all(|r| r.plugin != "removed")
    );
    assert_eq!(supervisor.state("added").unwrap().0, PluginState::Ready);
    assert_eq!(
        call_method(&supervisor, "added.status", json!(null))
            .await
            .unwrap()["plugin"],
        "added"
    );

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            RegistryEvent::PluginAdded { plugin, .. } => seen.push(format!("+{plugin}")),
            RegistryEvent::PluginRemoved { plugin, .. } => seen.push(format!("-{plugin}")),
            RegistryEvent::PluginState { plugin, state, .. } if plugin != "added" => {
                seen.push(format!("{plugin} {state}"));
            }
            _ => {}
        }
    }
    for expected in [
        "changed stopping",
        "changed stopped",
        "changed starting",
        "changed ready",
        "removed stopping",
        "removed stopped",
        "-removed",
        "+added",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected} missing from {seen:?}"
        );
    }
    assert!(!seen.iter().any(|s| s.starts_with("same ")), "{seen:?}");

    // Duplicate ids change nothing.
    let error = supervisor
        .apply(vec![same.spec.clone(), same.spec.clone()])
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("`same` appears twice"),
        "{error}"
    );
    assert_eq!(supervisor.state("added").unwrap().0, PluginState::Ready);

    crate::shut_down(&supervisor).await;
    for fixture in [&same, &changed, &added] {
        fixture.assert_all_gone();
    }
}

/// The value of one sample of a parsed scrape, found by name and labels.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(key, value)| s.labels.get(key) == Some(*value))
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => {
                buckets.last().map_or(0.0, |b| b.count)
            }
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

fn scrape_metrics(supervisor: &Supervisor) -> (String, prometheus_parse::Scrape) {
    let mut text = String::new();
    supervisor.encode_metrics(&mut text).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e}):\n{text}"));
    (text, scrape)
}

/// VmRSS of `pid`, in bytes.
fn resident_bytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024.0
}

#[tokio::test]
async fn metrics_count_calls_traffic_and_resources_in_the_prometheus_format() {
    let fixture = Fixture::new("metered", "ok");
    let supervisor = Supervisor::builder()
        .sample_resources(Duration::from_millis(100))
        .start(vec![fixture.spec.clone()])
        .unwrap();
    assert!(supervisor.wait_settled(SETTLE).await);
    echo(&supervisor, None).await.unwrap();
    echo(&supervisor, None).await.unwrap();
    let late = call_tool(
        &supervisor,
        "slow",
        args(&json!({"ms": 2000})),
        CallContext::default(),
        Some(Duration::from_millis(50)),
    )
    .await
    .unwrap_err();
    assert_eq!(late.code, ErrorCode::Timeout);
    let missing = call_tool(
        &supervisor,
        "nope",
        Map::new(),
        CallContext::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    // Wait for two resource samples (the CPU rate needs two) and for the timed-out
    // call's late answer.
    let (text, scrape) = tokio::time::timeout(SETTLE, async {
        loop {
            let (text, scrape) = scrape_metrics(&supervisor);
            let plugin = [("plugin", "metered")];
            if sample(&scrape, "outpost_plugin_cpu_usage", &plugin).is_some()
                && sample(&scrape, "outpost_plugin_late_responses_total", &plugin) == Some(1.0)
            {
                return (text, scrape);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("resources were sampled");
    let plugin = [("plugin", "metered")];
    let calls = |outcome: &str| {
        sample(
            &scrape,
            "outpost_calls_total",
            &[
                ("plugin", "metered"),
                ("kind", "tool"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(calls("ok"), Some(2.0), "{text}");
    assert_eq!(calls("timeout"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &scrape,
            "outpost_calls_refused_total",
            &[("kind", "tool"), ("code", "not-found")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "outpost_plugin_state",
            &[("plugin", "metered"), ("state", "ready")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "outpost_plugin_state",
            &[("plugin", "metered"), ("state", "failed")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&scrape, "outpost_plugin_restarts_total", &plugin),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "outpost_call_duration_seconds_count",
            &[("plugin", "metered"), ("kind", "tool")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&scrape, "outpost_plugin_late_responses_total", &plugin),
        Some(1.0),
        "the timed-out call's late answer is counted: {text}"
    );
    let messages_out = sample(
        &scrape,
        "outpost_plugin_messages_total",
        &[("plugin", "metered"), ("direction", "out")],
    )
    .unwrap();
    assert!(
        messages_out >= 5.0,
        "initialize, initialized, service/start, 3 calls: {text}"
    );
    assert!(
        sample(
            &scrape,
            "outpost_plugin_message_bytes_total",
            &[("plugin", "metered"), ("direction", "in")]
        )
        .unwrap()
            > 100.0
    );

    // The resident memory matches what the kernel says, within 10%: the metric is a
    // sample, so compare it with the kernel's figure read right after a scrape (a
    // busy machine may change it between two samples: a few tries).
    let pid = supervisor.snapshot().plugins[0].pid.unwrap();
    let mut tries = Vec::new();
    for _ in 0..20 {
        let (_, fresh) = scrape_metrics(&supervisor);
        let measured = sample(&fresh, "outpost_plugin_resident_memory_bytes", &plugin).unwrap();
        let actual = resident_bytes(pid);
        if (measured - actual).abs() <= actual * 0.1 {
            tries.clear();
            break;
        }
        tries.push((measured, actual));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(tries.is_empty(), "metric and /proc never agreed: {tries:?}");
    assert_eq!(
        sample(&scrape, "outpost_plugin_processes", &plugin),
        Some(1.0)
    );
    crate::shut_down(&supervisor).await;
    fixture.assert_all_gone();
}
