//! SDK benchmarks: `cargo bench -p outpost-sdk --bench sdk`.
//!
//! A plugin built with the SDK, served over an in-memory duplex, called by a host peer:
//!
//! - `sdk/tool_invoke`: one `tool/invoke` at a time (latency of the whole path: the
//!   host's peer, the framing, the SDK's dispatch, a call task, typed input and output);
//! - `sdk/tool_invoke_in_flight_64`: 64 calls in flight at once (throughput);
//! - `sdk/tool_invoke_one_thread`: `sdk/tool_invoke` with the host and the plugin on one
//!   single-threaded runtime, driven from that thread: no thread hand-offs, so what it
//!   measures is the code, not where the scheduler put the tasks (the two-worker figures
//!   are bimodal: docs/performance.md).
//!
//! Compare with `peer/round_trip` in `cargo bench -p outpost-protocol`, which answers in
//! the peer's own task: the difference is what the SDK adds.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use outpost_sdk::protocol::methods::{CallContext, ToolInvoke, ToolInvokeParams, ToolResult};
use outpost_sdk::protocol::peer::CallOptions;
use outpost_sdk::testing::TestHost;
use outpost_sdk::{Context, Error, Plugin, Tool};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Args {
    text: String,
}

async fn word_count(_ctx: Context, args: Args) -> Result<ToolResult, Error> {
    Ok(ToolResult::text(format!(
        "{} words",
        args.text.split_whitespace().count()
    )))
}

fn start(runtime: &tokio::runtime::Runtime) -> TestHost {
    runtime.block_on(async {
        let plugin = Plugin::builder("bench")
            .tool(Tool::new("word_count", "Counts words"), word_count)
            .build()
            .unwrap();
        let host = TestHost::start(plugin);
        host.initialize(json!({})).await.unwrap();
        host
    })
}

fn params() -> ToolInvokeParams {
    ToolInvokeParams {
        name: "word_count".to_owned(),
        arguments: json!({"text": "the quick brown fox jumps over the lazy dog"})
            .as_object()
            .unwrap()
            .clone(),
        context: CallContext {
            session_key: Some("agent:main:telegram:42".to_owned()),
            timeout_ms: Some(30_000),
            ..CallContext::default()
        },
    }
}

fn tool_invoke(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let host = start(&runtime);
    let params = params();
    let mut group = c.benchmark_group("sdk");
    group.bench_function("tool_invoke", |b| {
        b.to_async(&runtime).iter(|| async {
            host.peer()
                .request::<ToolInvoke>(&params, CallOptions::default())
                .await
                .unwrap()
        });
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("tool_invoke_in_flight_64", |b| {
        b.to_async(&runtime).iter(|| async {
            let calls = (0..64).map(|_| {
                host.peer()
                    .request::<ToolInvoke>(&params, CallOptions::default())
            });
            for result in futures_util::future::join_all(calls).await {
                result.unwrap();
            }
        });
    });
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let one_host = start(&single);
    group.throughput(Throughput::Elements(1));
    group.bench_function("tool_invoke_one_thread", |b| {
        b.to_async(&single).iter(|| async {
            one_host
                .peer()
                .request::<ToolInvoke>(&params, CallOptions::default())
                .await
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, tool_invoke);
criterion_main!(benches);
