//! `outpost-sdk-test-plugin`: a plugin that misbehaves on request, run as a child process
//! by the integration tests (`tests/integration/process.rs`).

use std::process::ExitCode;
use std::time::Duration;

use outpost_sdk::protocol::methods::ToolResult;
use outpost_sdk::{Error, Plugin, Service, Tool};
use serde::Deserialize;
use serde_json::Value;

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Config {
    /// The setup function fails permanently (exit 78).
    fail_permanently: bool,
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

/// Recurses `depth` times with at least 4 KiB of stack in each frame: deeper than a
/// spawned thread's 2 MiB, well within a main thread's 8 MiB.
fn deep(depth: usize) -> usize {
    let mut frame = [0u8; 4096];
    frame[depth % 4096] = 1;
    let frame = std::hint::black_box(&frame);
    if depth == 0 {
        return 0;
    }
    deep(depth - 1) + usize::from(frame[depth % 4096])
}

fn explode() -> ToolResult {
    panic!("the test plugin panics on purpose")
}

fn main() -> ExitCode {
    let mut plugin = Plugin::with_config::<Config>("sdk-test");
    if let Some(threads) = std::env::var("SDK_TEST_WORKER_THREADS")
        .ok()
        .and_then(|threads| threads.parse().ok())
    {
        plugin = plugin.worker_threads(threads);
    }
    plugin
        .fixture(true)
        .setup(|ctx| async move {
            if ctx.config().fail_permanently {
                return Err(Error::permanent("`failPermanently` is set"));
            }
            Ok(())
        })
        .tool(
            Tool::new("echo", "Answers its text"),
            |_ctx, args: Text| async move { Ok(ToolResult::text(args.text)) },
        )
        .tool(
            Tool::new(
                "stray_output",
                "Prints to stdout and runs a child that does too",
            ),
            |_ctx, _args: Value| async move {
                println!("stray println from a handler");
                print!("a partial stray line");
                // A child process inherits fd 0 and 1: it must neither write into the
                // protocol stream nor read the host's messages.
                let child = std::process::Command::new("sh")
                    .args(["-c", "echo child stdout; cat; echo child read eof"])
                    .status()?;
                Ok(ToolResult::text(format!("child exited: {child}")))
            },
        )
        .tool(
            Tool::new("deep_stack", "Uses over 2 MiB of stack before answering"),
            |_ctx, _args: Value| async move {
                Ok(ToolResult::text(format!("depth {}", deep(640))))
            },
        )
        .tool(
            Tool::new("panic", "Panics"),
            |_ctx, _args: Value| async move { Ok(explode()) },
        )
        .tool(
            Tool::new("wait", "Waits until cancelled, then logs it"),
            |ctx, _args: Value| async move {
                let signal = ctx.cancellation();
                let log = ctx.clone();
                // The handler's future is dropped on cancel; a task sees the signal.
                tokio::spawn(async move {
                    signal.cancelled().await;
                    log.info("wait: cancellation seen");
                });
                tokio::time::sleep(Duration::from_hours(1)).await;
                Ok(ToolResult::text("woke up"))
            },
        )
        .service_with_stop(
            Service::new("sdk-test-service"),
            |service| async move {
                let ctx = service.context().clone();
                service.spawn(async move {
                    ctx.cancelled().await;
                    ctx.info("service task: stopping");
                });
                Ok(())
            },
            |service| async move {
                service.info("service stop function ran");
                Ok(())
            },
        )
        .run()
}
