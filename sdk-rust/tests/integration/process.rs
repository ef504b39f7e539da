//! The SDK in a real process (`outpost-sdk-test-plugin`): fd 1 protection, exit 0 at EOF,
//! exit 78 on a permanent failure, and the protocol rules over real pipes.

use std::process::{ExitStatus, Stdio};

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::wire::{HANG_GUARD, Wire, code, initialize_params};

const PLUGIN: &str = env!("CARGO_BIN_EXE_outpost-sdk-test-plugin");

struct Plugin {
    child: Child,
    wire: Wire,
    stderr: JoinHandle<String>,
}

/// Starts the test plugin as a host would (`OUTPOST_PROTOCOL` set when `under_host`).
fn start(under_host: bool) -> Plugin {
    start_with_threads(under_host, None)
}

/// [`start`], on a runtime of `worker_threads` threads (`PluginBuilder::worker_threads`)
/// instead of the default single thread.
fn start_with_threads(under_host: bool, worker_threads: Option<usize>) -> Plugin {
    let mut command = Command::new(PLUGIN);
    if let Some(threads) = worker_threads {
        command.env("SDK_TEST_WORKER_THREADS", threads.to_string());
    }
    command
        .env_remove("OUTPOST_PROTOCOL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if under_host {
        command
            .env("OUTPOST_PROTOCOL", "1")
            .env("OUTPOST_PLUGIN_ID", "sdk-test");
    }
    let mut child = command.spawn().expect("the test plugin starts");
    let wire = Wire::new(child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text).await;
        text
    });
    Plugin {
        child,
        wire,
        stderr,
    }
}

impl Plugin {
    /// Waits for the exit and returns the status and everything written to stderr.
    async fn exit(mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(HANG_GUARD, self.child.wait())
            .await
            .expect("the plugin exits")
            .unwrap();
        (status, self.stderr.await.unwrap())
    }
}

#[tokio::test]
async fn started_by_a_person_it_prints_a_hint_and_exits_2() {
    let mut plugin = start(false);
    let nothing = plugin.wire.drain().await;
    let (status, stderr) = plugin.exit().await;
    assert_eq!(status.code(), Some(2));
    assert!(nothing.is_empty(), "{nothing:?}");
    assert!(
        stderr.contains("outpost-conformance run --plugin-dir"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_session_over_real_pipes() {
    session_over_real_pipes(None).await;
}

#[tokio::test]
async fn a_session_over_real_pipes_on_a_multi_threaded_runtime() {
    session_over_real_pipes(Some(2)).await;
}

async fn session_over_real_pipes(worker_threads: Option<usize>) {
    let mut plugin = start_with_threads(true, worker_threads);
    let wire = &mut plugin.wire;

    let early = wire
        .request(
            1,
            "tool/invoke",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(code(&early), Some(-32002), "{early}");
    let init = wire
        .request(2, "initialize", initialize_params("sdk-test", &json!({})))
        .await;
    assert_eq!(init["result"]["plugin"]["id"], "sdk-test");

    // On the default runtime the host's lines are read on a thread of their own, which
    // answers the calls that finish at once; a multi-threaded runtime reads in a task.
    let pid = plugin.child.id().expect("the plugin runs");
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap())
        .map(|name| name.trim_end().to_owned())
        .collect();
    assert_eq!(
        threads.iter().any(|name| name == "read the host"),
        worker_threads.is_none(),
        "{threads:?}"
    );

    // Handlers have a main thread's stack, whichever thread runs them.
    let deep = wire
        .request(30, "tool/invoke", json!({"name": "deep_stack"}))
        .await;
    assert_eq!(deep["result"]["content"][0]["text"], "depth 640", "{deep}");

    // Stray output from the handler and from a child process it runs goes to stderr;
    // every line on stdout is still a message (`Wire::read` checks each one).
    let stray = wire
        .request(3, "tool/invoke", json!({"name": "stray_output"}))
        .await;
    assert_eq!(
        stray["result"]["content"][0]["text"], "child exited: exit status: 0",
        "{stray}"
    );

    // A panic is an error answer, and the plugin goes on.
    let panicked = wire
        .request(4, "tool/invoke", json!({"name": "panic"}))
        .await;
    assert_eq!(code(&panicked), Some(-32000), "{panicked}");
    assert!(
        panicked["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the test plugin panics on purpose")
    );
    let echo = wire
        .request(
            5,
            "tool/invoke",
            json!({"name": "echo", "arguments": {"text": "still here"}}),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "still here");

    // Cancellation is answered -32800, and the handler's signal fires.
    wire.send_request(6, "tool/invoke", json!({"name": "wait"}))
        .await;
    wire.notify("$/cancel", json!({"id": 6})).await;
    assert_eq!(code(&wire.response(6).await), Some(-32800));
    wire.log("wait: cancellation seen").await;

    // Shutdown stops the running service: its stop function and its task run.
    let started = wire
        .request(7, "service/start", json!({"id": "sdk-test-service"}))
        .await;
    assert_eq!(started["result"], json!({}), "{started}");
    // Its log records come before the answer, so a host that closes stdin right after
    // the answer still gets them.
    wire.send_request(8, "shutdown", json!({})).await;
    let mut before = Vec::new();
    let done = loop {
        let message = wire.read().await.expect("the answer to `shutdown`");
        if message["id"] == 8 {
            break message;
        }
        before.push(message["params"]["message"].clone());
    };
    assert_eq!(done["result"], json!({}));
    assert!(
        before.contains(&json!("service stop function ran")),
        "{before:?}"
    );
    assert!(
        before.contains(&json!("service task: stopping")),
        "{before:?}"
    );

    // EOF: exit 0.
    wire.close().await;
    let rest = wire.drain().await;
    assert!(rest.iter().all(|m| m["method"] == "log"), "{rest:?}");
    let (status, stderr) = plugin.exit().await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    for expected in [
        "stray println from a handler",
        "a partial stray line",
        "child stdout",
        "child read eof",
        "the test plugin panics on purpose",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} not on stderr:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn eof_without_shutdown_exits_0() {
    let mut plugin = start(true);
    plugin
        .wire
        .request(1, "initialize", initialize_params("sdk-test", &json!({})))
        .await;
    plugin
        .wire
        .send_request(2, "tool/invoke", json!({"name": "wait"}))
        .await;
    plugin.wire.close().await;
    let rest = plugin.wire.drain().await;
    assert!(
        rest.iter().any(|m| m["id"] == 2 && code(m) == Some(-32800)),
        "{rest:?}"
    );
    let (status, stderr) = plugin.exit().await;
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test]
async fn a_shutdown_right_before_eof_is_answered_and_one_with_array_params_refused() {
    let mut plugin = start(true);
    let wire = &mut plugin.wire;
    wire.request(1, "initialize", initialize_params("sdk-test", &json!({})))
        .await;
    // Params that are not an object are refused as for any method, and nothing stops.
    let refused = wire.request(2, "shutdown", json!([])).await;
    assert_eq!(code(&refused), Some(-32602), "{refused}");
    let echo = wire
        .request(
            3,
            "tool/invoke",
            json!({"name": "echo", "arguments": {"text": "still serving"}}),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "still serving");
    // A host that closes stdin right after `shutdown` still gets its answer.
    wire.send_request(4, "shutdown", json!({})).await;
    wire.close().await;
    let rest = wire.drain().await;
    assert!(
        rest.iter()
            .any(|m| m["id"] == 4 && m["result"] == json!({})),
        "{rest:?}"
    );
    let (status, stderr) = plugin.exit().await;
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test]
async fn a_permanent_failure_exits_78_with_the_reason_on_stderr() {
    let mut plugin = start(true);
    let init = plugin
        .wire
        .request(
            1,
            "initialize",
            initialize_params("sdk-test", &json!({"failPermanently": true})),
        )
        .await;
    assert_eq!(code(&init), Some(-32000), "{init}");
    assert_eq!(init["error"]["data"], json!({"permanent": true}));
    // Exits without waiting for EOF.
    let (status, stderr) = plugin.exit().await;
    assert_eq!(status.code(), Some(78));
    assert!(stderr.contains("`failPermanently` is set"), "{stderr}");
}
