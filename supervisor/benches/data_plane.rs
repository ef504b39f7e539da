//! The data plane, measured beside a raw NDJSON echo over a pipe in the same run.
//!
//! `cargo bench -p outpost-supervisor --bench data_plane`
//!
//! This binary plays four parts. Run by `cargo bench` it is the benchmark; started
//! with `--plugin` it is a Rust plugin on outpost-sdk (tools `echo` and `crash`); with
//! `--minimal-plugin`, the protocol written by hand (also the JSON-RPC baseline, driven
//! without the supervisor); with `--raw-echo` it copies each stdin line back to stdout
//! and nothing else (the floor: two pipe hops and two process wake-ups, no JSON).
//!
//! What it reports (docs/performance.md holds the targets and the figures):
//!
//! - `latency`: one call at a time, median and p99, raw echo vs `Supervisor::call_tool`
//!   to the Rust plugin (and the Python and Node examples, when `python3` and `node`
//!   are on PATH), in alternating rounds; the SDK plugin is also driven without the
//!   supervisor, beside the minimal plugin (what the SDK itself costs);
//! - `throughput`: 64 calls in flight, calls per second, raw vs supervisor, in
//!   alternating rounds (the median round of each). The supervisor's calls come from 64
//!   tasks (a gateway's request handlers) and, for comparison, from one task;
//! - `concurrency`: the curve behind the default `maxConcurrentRequests`: calls per
//!   second, latency and memory against the limit, 256 callers;
//! - `spawn`: start to ready of one Rust plugin (spawn + handshake), median of runs,
//!   beside the raw spawn of the same binary with the handshake by hand, contained,
//!   not contained, and with no sandbox at all: added to a running supervisor (and,
//!   contained, to one that makes no container ahead), and with a whole supervisor
//!   started for it; with `--steps`, what each step of the
//!   added plugin's start took (from the supervisor's `outpost::spawn` trace events);
//! - `fleet`: 100 Rust plugins from start to all ready;
//! - `memory`: the supervisor's resident memory per idle plugin, with 100 running;
//! - `restart`: from a crash to serving again, with the first backoff at 250 ms.
//!
//! `-- --json` prints one JSON document instead (see `support/report.rs`), so that a
//! script can compare runs figure by figure.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use outpost_protocol::ManifestField;
use outpost_supervisor::{
    Call, Declarations, LaunchSpec, PluginSpec, Sandbox, SupervisionPolicy, Supervisor,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Latency and throughput alternate between the raw echo and the supervisor, round by
/// round, so that both see the same machine (a shared machine drifts within a run).
const ROUNDS: usize = 10;
const LATENCY_CALLS: usize = 500;
/// A multiple of `IN_FLIGHT`, so that every caller task makes as many calls.
const THROUGHPUT_CALLS: u32 = 16_384;
const IN_FLIGHT: usize = 64;
const SPAWN_RUNS: usize = 30;
const FLEET: usize = 100;
const RESTART_RUNS: usize = 10;
/// The first restart delay in the `restart` measurement, in milliseconds.
const FIRST_BACKOFF_MS: u64 = 250;

/// A payload like a small tool call's.
const TEXT: &str = "the quick brown fox jumps over the lazy dog";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--plugin") {
        return plugin();
    }
    if args.iter().any(|arg| arg == "--minimal-plugin") {
        return minimal_plugin();
    }
    if args.iter().any(|arg| arg == "--raw-echo") {
        return raw_echo();
    }
    // `cargo test --benches` runs benches with no `--bench`: build, do not measure.
    if !args.iter().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // `cargo bench ... -- throughput restart` runs only those parts.
    let only: Vec<String> = args
        .iter()
        .filter(|arg| !arg.starts_with('-'))
        .cloned()
        .collect();
    let report = Report::new("data_plane", &args);
    // On a worker thread, as a gateway's own request handlers run (a `block_on`
    // thread would add a thread hand-off to every call).
    let report = runtime
        .block_on(async { tokio::spawn(async move { bench(&only, report).await }).await })
        .expect("the benchmark ran");
    report.finish();
    ExitCode::SUCCESS
}

// ---- the helper programs ----

#[path = "support/minimal_plugin.rs"]
mod minimal;
#[path = "support/report.rs"]
mod report;

use report::{Report, micros, millis, ratio};

use minimal::{answer_lines, minimal_plugin};

#[path = "support/sdk_plugin.rs"]
mod sdk;

#[path = "support/proc_status.rs"]
mod proc_status;

#[path = "support/steps.rs"]
mod steps;

use proc_status::status_kib;

fn plugin() -> ExitCode {
    // One binary serves every plugin id of the `fleet` measurement.
    let id = std::env::var(outpost_protocol::ENV_PLUGIN_ID).unwrap_or_else(|_| "bench".into());
    sdk::sdk_plugin(id, "echo".into(), "crash".into())
}

/// `--raw-echo`: copies each line back.
fn raw_echo() -> ExitCode {
    answer_lines(|line, out| {
        out.extend_from_slice(line);
        Some(())
    })
}

// ---- the measurements ----

async fn bench(only: &[String], mut report: Report) -> Report {
    let wanted = |part: &str| only.is_empty() || only.iter().any(|name| name == part);
    report.note(&format!("data plane benchmark ({} cores)", cores()));
    if wanted("latency") {
        latencies(&mut report).await;
    }
    if wanted("throughput") {
        throughputs(&mut report).await;
    }
    if wanted("concurrency") {
        concurrency(&mut report).await;
    }
    if wanted("spawn") {
        spawn(&mut report).await;
    }
    if wanted("fleet") {
        fleet(&mut report).await;
    }
    if wanted("restart") {
        restart(&mut report).await;
    }
    report
}

/// One tool the latency rounds call through a supervisor.
struct Target {
    what: &'static str,
    supervisor: Supervisor,
    tool: &'static str,
    arguments: Map<String, Value>,
    samples: Vec<Duration>,
}

impl Target {
    async fn start(
        what: &'static str,
        spec: PluginSpec,
        tool: &'static str,
        arguments: Value,
    ) -> Self {
        Self {
            what,
            supervisor: start(vec![spec]).await,
            tool,
            arguments: arguments.as_object().cloned().unwrap_or_default(),
            samples: Vec::with_capacity(ROUNDS * LATENCY_CALLS),
        }
    }

    async fn call(&self) -> Duration {
        let begin = Instant::now();
        self.supervisor
            .call(Call::tool(self.tool, self.arguments.clone()))
            .await
            .expect("a call");
        begin.elapsed()
    }
}

/// The baselines, each a child driven over two pipes without the supervisor: a byte
/// echo (the floor of two pipe hops), a JSON-RPC echo (the minimal plugin: the same wire
/// work without Outpost: a request serialized, parsed, answered, parsed), and the SDK
/// plugin driven the same way (what the SDK itself costs beside the minimal plugin).
const BASELINES: [(&str, Echo); 3] = [
    ("raw NDJSON echo over a pipe (bytes)", Echo::Bytes),
    ("raw NDJSON echo over a pipe (JSON-RPC)", Echo::Minimal),
    ("raw JSON-RPC to the Rust plugin on outpost-sdk", Echo::Sdk),
];

const SDK: &str = "supervisor -> Rust plugin on outpost-sdk";
const MINIMAL: &str = "supervisor -> minimal Rust plugin, blocking std";
const MINIMAL_EPOLL: &str = "supervisor -> minimal Rust plugin, waiting in epoll_wait (echo)";
const MINIMAL_TOKIO: &str = "supervisor -> minimal Rust plugin, on tokio current_thread (echo)";

async fn latencies(report: &mut Report) {
    let mut baselines = BASELINES.map(|(_, kind)| (kind, Vec::new()));
    let mut echoes = Vec::new();
    for (kind, _) in &baselines {
        echoes.push(RawEcho::start(*kind).await);
    }
    let mut targets = vec![
        Target::start(
            "supervisor -> Rust plugin on outpost-sdk (echo)",
            rust_spec("bench", policy(&json!({}))),
            "echo",
            json!({ "text": TEXT }),
        )
        .await,
    ];
    let mut minimal = rust_spec("minimal", policy(&json!({})));
    minimal.launch.args = vec!["--minimal-plugin".into()];
    targets.push(
        Target::start(
            "supervisor -> minimal Rust plugin, blocking std (echo)",
            minimal,
            "echo",
            json!({ "text": TEXT }),
        )
        .await,
    );
    // The same minimal plugin woken by readiness events, as every event loop is: the
    // floor of a plugin on a runtime like the SDK's.
    for (id, flag, what) in [
        ("minimal-epoll", "--epoll", MINIMAL_EPOLL),
        ("minimal-tokio", "--tokio", MINIMAL_TOKIO),
    ] {
        let mut spec = rust_spec(id, policy(&json!({})));
        spec.launch.args = vec!["--minimal-plugin".into(), flag.into()];
        targets.push(Target::start(what, spec, "echo", json!({ "text": TEXT })).await);
    }
    for (what, spec, tool, arguments) in interpreted_examples() {
        targets.push(Target::start(what, spec, tool, arguments).await);
    }
    // Warm up every path once, then alternate.
    for round in 0..=ROUNDS {
        for which in 0..echoes.len() {
            for index in 0..LATENCY_CALLS {
                let sample = echoes[which].round_trip(index).await;
                if round > 0 {
                    baselines[which].1.push(sample);
                }
            }
        }
        for target in &mut targets {
            for _ in 0..LATENCY_CALLS {
                let sample = target.call().await;
                if round > 0 {
                    target.samples.push(sample);
                }
            }
        }
    }
    let mut floors = Vec::new();
    for ((what, _), ((_, samples), echo)) in BASELINES.iter().zip(baselines.into_iter().zip(echoes))
    {
        let (p50, p99) = percentiles(samples);
        report.add(
            "latency",
            what,
            &format!("{what}: p50 {}, p99 {}", us(p50), us(p99)),
            json!({"p50Us": micros(p50), "p99Us": micros(p99)}),
        );
        floors.push(p50);
        echo.stop().await;
    }
    report.add(
        "latency",
        "the SDK plugin beside the minimal plugin, without the supervisor",
        &format!(
            "outpost-sdk / minimal plugin, both without the supervisor: {:.2}x",
            floors[2].as_secs_f64() / floors[1].as_secs_f64()
        ),
        json!({"ratio": ratio(floors[2].as_secs_f64(), floors[1].as_secs_f64())}),
    );
    let mut p50s = Vec::new();
    for target in targets {
        let (p50, p99) = percentiles(target.samples);
        report.add(
            "latency",
            target.what,
            &format!(
                "{}: p50 {} ({:.2}x bytes, {:.2}x JSON-RPC), p99 {}",
                target.what,
                us(p50),
                p50.as_secs_f64() / floors[0].as_secs_f64(),
                p50.as_secs_f64() / floors[1].as_secs_f64(),
                us(p99)
            ),
            json!({
                "p50Us": micros(p50),
                "p99Us": micros(p99),
                "ratioToBytes": ratio(p50.as_secs_f64(), floors[0].as_secs_f64()),
                "ratioToJsonRpc": ratio(p50.as_secs_f64(), floors[1].as_secs_f64()),
            }),
        );
        p50s.push(p50);
        target.supervisor.shutdown().await;
    }
    let p50_ratio = |a: usize, b: usize| p50s[a].as_secs_f64() / p50s[b].as_secs_f64();
    report.add(
        "latency",
        "SDK / hand-written, through the supervisor",
        &format!(
            "outpost-sdk / minimal plugin, p50 through the supervisor: {:.2}x (target at most 1.2x)",
            p50_ratio(0, 1)
        ),
        json!({"ratio": ratio(p50s[0].as_secs_f64(), p50s[1].as_secs_f64()), "target": 1.2}),
    );
    report.add(
        "latency",
        "event loop / blocking read, the minimal plugin through the supervisor",
        &format!(
            "the minimal plugin waiting in epoll_wait / in read: {:.2}x; on tokio / in read: {:.2}x (what waking by readiness costs)",
            p50_ratio(2, 1),
            p50_ratio(3, 1)
        ),
        json!({
            "epollRatio": ratio(p50s[2].as_secs_f64(), p50s[1].as_secs_f64()),
            "tokioRatio": ratio(p50s[3].as_secs_f64(), p50s[1].as_secs_f64()),
        }),
    );
}

/// How the supervisor's 64 calls in flight are made.
#[derive(Clone, Copy)]
enum Callers {
    /// 64 tasks, each making its calls one after another: a gateway's request handlers,
    /// each in its own task. The shape the target is judged on.
    Tasks,
    /// One task keeping 64 calls in flight (`buffer_unordered`): every completion is
    /// handled by that one task, as in the raw echo's driver.
    OneTask,
}

impl Callers {
    fn label(self) -> &'static str {
        match self {
            Self::Tasks => "64 callers, a task each",
            Self::OneTask => "64 in flight from one task",
        }
    }
}

async fn throughputs(report: &mut Report) {
    let mut baselines = BASELINES.map(|(_, kind)| (kind, Vec::new()));
    let mut echoes = Vec::new();
    for (kind, _) in &baselines {
        echoes.push(RawEcho::start(*kind).await);
    }
    let mut minimal = rust_spec("minimal", policy(&json!({})));
    minimal.launch.args = vec!["--minimal-plugin".into()];
    let sdk = Arc::new(start(vec![rust_spec("bench", policy(&json!({})))]).await);
    let minimal = Arc::new(start(vec![minimal]).await);
    let mut targets = Vec::new();
    for callers in [Callers::Tasks, Callers::OneTask] {
        targets.push((SDK, sdk.clone(), callers));
        targets.push((MINIMAL, minimal.clone(), callers));
    }
    let mut rates = vec![Vec::new(); targets.len()];
    for round in 0..=ROUNDS {
        for which in 0..echoes.len() {
            let rate = echoes[which].throughput().await;
            if round > 0 {
                baselines[which].1.push(rate);
            }
        }
        // By index: an iterator held across the `.await` makes the future not `Send`.
        for target in 0..targets.len() {
            let (supervisor, callers) = (targets[target].1.clone(), targets[target].2);
            let rate = throughput(&supervisor, callers, THROUGHPUT_CALLS).await;
            if round > 0 {
                rates[target].push(rate);
            }
        }
    }
    let mut floors = Vec::new();
    for ((what, _), ((_, samples), echo)) in BASELINES.iter().zip(baselines.into_iter().zip(echoes))
    {
        let rate = median(samples);
        report.add(
            "throughput",
            what,
            &format!("{what}, {IN_FLIGHT} in flight: {rate:.0} calls/s"),
            json!({"callsPerSec": rate.round()}),
        );
        floors.push(rate);
        echo.stop().await;
    }
    report.add(
        "throughput",
        "the SDK plugin beside the minimal plugin, without the supervisor",
        &format!(
            "outpost-sdk / minimal plugin, both without the supervisor: {:.2}x",
            floors[2] / floors[1]
        ),
        json!({"ratio": ratio(floors[2], floors[1])}),
    );
    let mut medians = Vec::new();
    for ((what, _, callers), samples) in targets.into_iter().zip(rates) {
        let rate = median(samples);
        report.add(
            "throughput",
            &format!("{what}, {}", callers.label()),
            &format!(
                "{what}, {}: {rate:.0} calls/s ({:.0}% of bytes, {:.0}% of JSON-RPC)",
                callers.label(),
                100.0 * rate / floors[0],
                100.0 * rate / floors[1],
            ),
            json!({
                "callsPerSec": rate.round(),
                "ratioToBytes": ratio(rate, floors[0]),
                "ratioToJsonRpc": ratio(rate, floors[1]),
            }),
        );
        medians.push(rate);
    }
    for (index, callers) in [Callers::Tasks, Callers::OneTask].into_iter().enumerate() {
        let (sdk_rate, minimal_rate) = (medians[2 * index], medians[2 * index + 1]);
        report.add(
            "throughput",
            &format!("SDK / hand-written, {}", callers.label()),
            &format!(
                "outpost-sdk / minimal plugin through the supervisor, {}: {:.2}x (target at least 0.8x)",
                callers.label(),
                sdk_rate / minimal_rate
            ),
            json!({"ratio": ratio(sdk_rate, minimal_rate), "target": 0.8}),
        );
    }
    for supervisor in [sdk, minimal] {
        supervisor.shutdown().await;
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The limits the `concurrency` curve measures.
const LIMITS: [u32; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/// Callers in the `concurrency` curve: more than the largest limit.
const CURVE_CALLERS: usize = 256;
const CURVE_CALLS: u32 = 32_768;

/// Calls per second, latency and memory against `maxConcurrentRequests`, for both Rust
/// plugins, with 256 callers (a busy gateway) and a queue that never refuses a call.
async fn concurrency(report: &mut Report) {
    for (what, minimal) in [(MINIMAL, true), (SDK, false)] {
        for limit in LIMITS {
            let policy = SupervisionPolicy::from_layers([&json!({"limits": {
                "maxConcurrentRequests": limit,
                "maxQueuedRequests": 4096,
            }})])
            .expect("a valid policy");
            let mut spec = rust_spec("curve", policy);
            if minimal {
                spec.launch.args = vec!["--minimal-plugin".into()];
            }
            let supervisor = Arc::new(start(vec![spec]).await);
            let pid = supervisor.snapshot().plugins[0].pid;
            // Warm up, then the median of three rounds.
            curve_round(&supervisor, CURVE_CALLS / 4).await;
            let mut rounds = Vec::new();
            for _ in 0..3 {
                rounds.push(curve_round(&supervisor, CURVE_CALLS).await);
            }
            rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (rate, p50, p99) = rounds[1];
            let plugin_peak = pid.map_or(0, |pid| {
                status_kib(&format!("/proc/{pid}/status"), "VmHWM:")
            });
            let supervisor_rss = resident_bytes() / 1024;
            report.add(
                "concurrency",
                what,
                &format!(
                    "{what}, maxConcurrentRequests {limit:>3}, {CURVE_CALLERS} callers: {rate:>7.0} calls/s, p50 {}, p99 {}, plugin peak RSS {plugin_peak} KiB, supervisor RSS {supervisor_rss} KiB",
                    us(p50),
                    us(p99)
                ),
                json!({
                    "limit": limit,
                    "callers": CURVE_CALLERS,
                    "callsPerSec": rate.round(),
                    "p50Us": micros(p50),
                    "p99Us": micros(p99),
                    "pluginPeakRssKib": plugin_peak,
                    "supervisorRssKib": supervisor_rss,
                }),
            );
            supervisor.shutdown().await;
        }
    }
}

/// One round of the curve: calls per second, and the p50 and p99 of each call's time.
async fn curve_round(supervisor: &Arc<Supervisor>, calls: u32) -> (f64, Duration, Duration) {
    let arguments = json!({ "text": TEXT }).as_object().cloned().unwrap();
    let each = calls as usize / CURVE_CALLERS;
    let begin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CURVE_CALLERS {
        let (supervisor, arguments) = (supervisor.clone(), arguments.clone());
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(each);
            for _ in 0..each {
                let call = Instant::now();
                supervisor
                    .call(Call::tool("echo", arguments.clone()))
                    .await
                    .expect("a call");
                samples.push(call.elapsed());
            }
            samples
        });
    }
    let mut samples = Vec::with_capacity(calls as usize);
    while let Some(done) = tasks.join_next().await {
        samples.extend(done.expect("a caller task"));
    }
    let rate = f64::from(calls) / begin.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(samples);
    (rate, p50, p99)
}

/// Spawn + handshake through the supervisor, beside the raw spawn of the same binary
/// with the handshake written by hand, in three sandboxes: the default (contained in
/// namespaces where the host allows, Landlock), not contained (Landlock only), and
/// none at all.
///
/// Two supervised figures per sandbox: the plugin added to a supervisor that already
/// runs (`Supervisor::apply`, what a gateway's reload or an operator's start costs:
/// the spawn and the handshake the target is about), and a whole supervisor
/// started for it (`Supervisor::start`: also the spawner thread and the supervisor's
/// own set-up). Runs alternate between the raw spawn and the six supervised paths, so
/// that all of them see the same machine.
async fn spawn(report: &mut Report) {
    let host = outpost_supervisor::isolation::probe();
    report.note(&format!(
        "spawn: the host allows namespaces: {}",
        host.namespaces.available
    ));
    let steps = std::env::args()
        .any(|arg| arg == "--steps")
        .then(steps::Steps::install);
    let mut step_times: Vec<steps::StepTimes> = Vec::new();
    let sandboxes = [
        None,
        Some(Sandbox::default().with_contain(false)),
        Some(Sandbox::default().with_contain(false).with_filesystem(None)),
    ];
    let spec_in = |sandbox: &Option<Sandbox>| {
        let mut spec = rust_spec("bench", policy(&json!({})));
        if let Some(sandbox) = sandbox {
            spec.launch = spec.launch.with_sandbox(sandbox.clone());
        }
        spec
    };
    // One running supervisor per way of adding, with no plugin between runs: each
    // sandbox, and the default one again with no container made ahead (each contained
    // start then makes its namespaces).
    let ways: [(&Option<Sandbox>, bool); 4] = [
        (&sandboxes[0], true),
        (&sandboxes[0], false),
        (&sandboxes[1], true),
        (&sandboxes[2], true),
    ];
    let running: Vec<Supervisor> = ways
        .iter()
        .map(|&(_, ahead)| {
            let builder = Supervisor::builder();
            let builder = if ahead {
                builder
            } else {
                builder.no_container_ahead()
            };
            builder.start(Vec::new()).expect("the supervisor starts")
        })
        .collect();
    let mut raw = Vec::with_capacity(SPAWN_RUNS);
    let mut whole = vec![Vec::with_capacity(SPAWN_RUNS); sandboxes.len()];
    let mut added = vec![Vec::with_capacity(SPAWN_RUNS); ways.len()];
    step_times.resize_with(ways.len(), Default::default);
    for _ in 0..SPAWN_RUNS {
        let begin = Instant::now();
        let echo = RawEcho::start(Echo::Sdk).await;
        raw.push(begin.elapsed());
        echo.stop().await;
        for (which, &(sandbox, _)) in ways.iter().enumerate() {
            let supervisor = &running[which];
            if let Some(steps) = &steps {
                steps.take();
            }
            let begin = Instant::now();
            supervisor
                .apply(vec![spec_in(sandbox)])
                .await
                .expect("the plugin is added");
            ready(supervisor, "bench").await;
            let end = Instant::now();
            added[which].push(end - begin);
            if let Some(steps) = &steps {
                step_times[which].add(begin, steps.take(), end, "seen ready by the caller");
            }
            supervisor
                .apply(Vec::new())
                .await
                .expect("the plugin is removed");
        }
        for (which, sandbox) in sandboxes.iter().enumerate() {
            let spec = spec_in(sandbox);
            let begin = Instant::now();
            let supervisor = start(vec![spec]).await;
            whole[which].push(begin.elapsed());
            supervisor.shutdown().await;
        }
    }
    for supervisor in running {
        supervisor.shutdown().await;
    }
    raw.sort();
    let floor = raw[SPAWN_RUNS / 2];
    spawn_line(
        report,
        "raw: the SDK plugin spawned by hand (tokio::process), initialize answered",
        &raw,
        None,
    );
    for (which, spawns) in whole.iter_mut().enumerate() {
        spawns.sort();
        let what = [
            "one Rust plugin, start to ready (spawn + handshake), default sandbox",
            "the same, not contained (no namespaces; Landlock kept)",
            "the same, no sandbox at all (no namespaces, no Landlock)",
        ][which];
        spawn_line(report, what, spawns, Some(floor));
    }
    for (which, spawns) in added.iter_mut().enumerate() {
        spawns.sort();
        let what = [
            "one Rust plugin added to a running supervisor, to ready (spawn + handshake), default sandbox",
            "added, default sandbox, no container made ahead (the namespaces made for the plugin)",
            "added, not contained (no namespaces; Landlock kept)",
            "added, no sandbox at all (no namespaces, no Landlock)",
        ][which];
        spawn_line(report, what, spawns, Some(floor));
    }
    if steps.is_some() {
        for (which, times) in step_times.into_iter().enumerate() {
            let what = [
                "default sandbox",
                "default sandbox, no container made ahead",
                "not contained",
                "no sandbox at all",
            ][which];
            let medians = times.medians();
            let text = medians
                .iter()
                .map(|(step, median)| format!("{step} {}", us(*median)))
                .collect::<Vec<_>>()
                .join(", ");
            let numbers: Map<String, Value> = medians
                .iter()
                .map(|(step, median)| (step.clone(), json!(micros(*median))))
                .collect();
            report.add(
                "spawn",
                &format!("steps of the added plugin, {what}"),
                &format!(
                    "steps of the added plugin, {what} (medians, each since the one before): {text}"
                ),
                json!({ "stepsUs": numbers }),
            );
        }
    }
}

/// Waits until `plugin`, just added, is ready.
async fn ready(supervisor: &Supervisor, plugin: &str) {
    assert!(
        supervisor.wait_settled(Duration::from_mins(1)).await,
        "{plugin} did not settle"
    );
    let (state, reason) = supervisor.state(plugin).expect("a known plugin");
    assert_eq!(state.to_string(), "ready", "{plugin}: {reason:?}");
}

fn spawn_line(report: &mut Report, what: &str, spawns: &[Duration], baseline: Option<Duration>) {
    let median = spawns[SPAWN_RUNS / 2];
    let versus = baseline.map_or_else(String::new, |b| {
        format!(
            " = {:.2}x the raw spawn",
            median.as_secs_f64() / b.as_secs_f64()
        )
    });
    report.add(
        "spawn",
        what,
        &format!(
            "{what}: median {}{versus}, min {}, max {} ({SPAWN_RUNS} runs)",
            ms(median),
            ms(spawns[0]),
            ms(spawns[SPAWN_RUNS - 1]),
        ),
        json!({
            "medianMs": millis(median),
            "minMs": millis(spawns[0]),
            "maxMs": millis(spawns[SPAWN_RUNS - 1]),
            "ratioToRaw": baseline.map(|b| ratio(median.as_secs_f64(), b.as_secs_f64())),
        }),
    );
}

/// 100 plugins: start to all ready, and the supervisor's memory per idle plugin.
async fn fleet(report: &mut Report) {
    let before = resident_bytes();
    let begin = Instant::now();
    let specs = (0..FLEET)
        .map(|index| rust_spec(&format!("bench-{index:03}"), policy(&json!({}))))
        .collect();
    let fleet = start(specs).await;
    let all_ready = begin.elapsed();
    report.add(
        "fleet",
        "100 Rust plugins",
        &format!(
            "{FLEET} Rust plugins, start to all ready: {}",
            ms(all_ready)
        ),
        json!({"plugins": FLEET, "allReadyMs": millis(all_ready)}),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_bytes();
    report.add(
        "memory",
        "supervisor per idle plugin",
        &format!(
            "supervisor RSS {} KiB before, {} KiB with {FLEET} idle plugins: {} KiB per plugin",
            before / 1024,
            after / 1024,
            after.saturating_sub(before) / 1024 / FLEET as u64
        ),
        json!({
            "beforeKib": before / 1024,
            "afterKib": after / 1024,
            "perPluginKib": after.saturating_sub(before) / 1024 / FLEET as u64,
        }),
    );
    fleet.shutdown().await;
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn resident_bytes() -> u64 {
    status_kib("/proc/self/status", "VmRSS:") * 1024
}

/// A `kB` line of a `/proc/<pid>/status` file, 0 if unreadable.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    (samples[samples.len() / 2], p99)
}

/// The bench's policy: defaults, with room for 64 calls in flight, plus `layer`.
fn policy(layer: &Value) -> SupervisionPolicy {
    let room =
        json!({"limits": {"maxConcurrentRequests": IN_FLIGHT, "maxQueuedRequests": IN_FLIGHT}});
    SupervisionPolicy::from_layers([&room, layer]).expect("a valid policy")
}

fn spec(
    id: &str,
    program: PathBuf,
    args: &[&str],
    root: PathBuf,
    tools: &[&str],
    policy: SupervisionPolicy,
) -> PluginSpec {
    let declarations = tools.iter().fold(Declarations::default(), |d, tool| {
        d.with(ManifestField::Contracts("tools"), tool)
    });
    let launch = LaunchSpec::new(program, root)
        .with_args(args.iter().copied())
        .with_policy(policy);
    PluginSpec::new(id, launch).with_declarations(declarations)
}

fn rust_spec(id: &str, policy: SupervisionPolicy) -> PluginSpec {
    let exe = std::env::current_exe().expect("the bench's own path");
    let root = exe.parent().expect("a directory").to_path_buf();
    spec(id, exe, &["--plugin"], root, &["echo", "crash"], policy)
}

/// The Python and Node examples, for those of `python3` and `node` that are on PATH.
fn interpreted_examples() -> Vec<(&'static str, PluginSpec, &'static str, Value)> {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut examples = Vec::new();
    if let Some(python) = on_path("python3") {
        examples.push((
            "supervisor -> Python example (note_list)",
            spec(
                "notes",
                python,
                &["plugin.py"],
                plugins.join("python-example"),
                &["note_list"],
                policy(&json!({})),
            ),
            "note_list",
            json!({}),
        ));
    }
    if let Some(node) = on_path("node") {
        examples.push((
            "supervisor -> Node example (current_time)",
            spec(
                "clock",
                node,
                &["plugin.js"],
                plugins.join("node-example"),
                &["current_time"],
                policy(&json!({})),
            ),
            "current_time",
            json!({}),
        ));
    }
    examples
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Starts `specs` and waits until every plugin is ready.
async fn start(specs: Vec<PluginSpec>) -> Supervisor {
    let ids: Vec<String> = specs.iter().map(|spec| spec.id.clone()).collect();
    let supervisor = Supervisor::start(specs).expect("the supervisor starts");
    assert!(
        supervisor.wait_settled(Duration::from_mins(1)).await,
        "the plugins did not settle"
    );
    for id in ids {
        let (state, reason) = supervisor.state(&id).expect("a known plugin");
        assert_eq!(state.to_string(), "ready", "{id}: {reason:?}");
    }
    supervisor
}

/// Calls per second with `IN_FLIGHT` calls in flight, made by `callers`.
async fn throughput(supervisor: &Arc<Supervisor>, callers: Callers, calls: u32) -> f64 {
    let arguments = json!({ "text": TEXT }).as_object().cloned().unwrap();
    let begin = Instant::now();
    match callers {
        Callers::Tasks => {
            let each = calls as usize / IN_FLIGHT;
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT {
                let (supervisor, arguments) = (supervisor.clone(), arguments.clone());
                tasks.spawn(async move {
                    for _ in 0..each {
                        supervisor
                            .call(Call::tool("echo", arguments.clone()))
                            .await
                            .expect("a call");
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("a caller task");
            }
        }
        Callers::OneTask => {
            futures_util::stream::iter(0..calls)
                .map(|_| supervisor.call(Call::tool("echo", arguments.clone())))
                .buffer_unordered(IN_FLIGHT)
                .for_each(|result| {
                    result.expect("a call");
                    std::future::ready(())
                })
                .await;
        }
    }
    f64::from(calls) / begin.elapsed().as_secs_f64()
}

/// A JSON-RPC request line the size of the supervisor's `echo` call.
fn request_line(id: usize) -> String {
    let line = json!({
        "jsonrpc": "2.0", "id": id, "method": "tool/invoke",
        "params": {"name": "echo", "arguments": {"text": TEXT}, "context": {"timeoutMs": 30000}},
    });
    format!("{line}\n")
}

/// What a baseline's child is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// `--raw-echo`: copies each line back.
    Bytes,
    /// `--minimal-plugin`: answers JSON-RPC (answers parsed here).
    Minimal,
    /// `--plugin`: the SDK plugin, after a handshake (answers parsed here).
    Sdk,
}

/// A baseline: a child driven over two pipes without the supervisor.
struct RawEcho {
    kind: Echo,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
    answer: String,
}

impl RawEcho {
    async fn start(kind: Echo) -> Self {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .arg(match kind {
                Echo::Bytes => "--raw-echo",
                Echo::Minimal => "--minimal-plugin",
                Echo::Sdk => "--plugin",
            })
            .env(
                outpost_protocol::ENV_PROTOCOL,
                outpost_protocol::PROTOCOL_VERSION,
            )
            .env(outpost_protocol::ENV_PLUGIN_ID, "bench")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the raw echo starts");
        let mut echo = Self {
            kind,
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            answer: String::new(),
        };
        if kind == Echo::Sdk {
            echo.handshake().await;
        }
        echo
    }

    /// `initialize`, as the supervisor sends it, and `initialized` accepting both tools.
    async fn handshake(&mut self) {
        let initialized = json!({
            "jsonrpc": "2.0", "method": "initialized",
            "params": {"accepted": [{"index": 0, "kind": "tool", "key": "echo"}, {"index": 1, "kind": "tool", "key": "crash"}], "rejected": []},
        });
        self.stdin
            .write_all(sdk::initialize_line().as_bytes())
            .await
            .unwrap();
        self.answer.clear();
        self.stdout.read_line(&mut self.answer).await.unwrap();
        let answer: Value = serde_json::from_str(&self.answer).expect("a JSON answer");
        assert!(answer.get("result").is_some(), "initialize: {answer}");
        self.stdin
            .write_all(format!("{initialized}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn round_trip(&mut self, id: usize) -> Duration {
        let begin = Instant::now();
        self.stdin
            .write_all(request_line(id).as_bytes())
            .await
            .unwrap();
        self.answer.clear();
        self.stdout.read_line(&mut self.answer).await.unwrap();
        if self.kind != Echo::Bytes {
            let answer: Value = serde_json::from_str(&self.answer).expect("a JSON answer");
            assert_eq!(answer["id"], id, "answers come in order: {answer}");
        }
        begin.elapsed()
    }

    /// Calls per second with at most `IN_FLIGHT` lines written and not yet read back.
    async fn throughput(&mut self) -> f64 {
        let window = tokio::sync::Semaphore::new(IN_FLIGHT);
        let json = self.kind != Echo::Bytes;
        let begin = Instant::now();
        let write = async {
            for id in 0..THROUGHPUT_CALLS as usize {
                window.acquire().await.unwrap().forget();
                self.stdin
                    .write_all(request_line(id).as_bytes())
                    .await
                    .unwrap();
            }
        };
        let read = async {
            for _ in 0..THROUGHPUT_CALLS {
                self.answer.clear();
                self.stdout.read_line(&mut self.answer).await.unwrap();
                if json {
                    serde_json::from_str::<Value>(&self.answer).expect("a JSON answer");
                }
                window.add_permits(1);
            }
        };
        tokio::join!(write, read);
        f64::from(THROUGHPUT_CALLS) / begin.elapsed().as_secs_f64()
    }

    async fn stop(self) {
        drop(self.stdin);
        let mut child = self.child;
        let _ = child.wait().await;
    }
}

/// From a crash to serving again: the `crash` call ends the plugin, and the next call,
/// made at once, waits for the restart within its deadline. Between runs the plugin
/// runs longer than `resetAfterMs`, so each crash is a first crash (first backoff).
async fn restart(report: &mut Report) {
    let policy = policy(&json!({
        "restart": {
            "initialBackoffMs": FIRST_BACKOFF_MS,
            "jitter": 0.0,
            "resetAfterMs": 200,
            "maxCrashes": 1000,
        },
    }));
    let supervisor = start(vec![rust_spec("bench", policy)]).await;
    let echo_args = json!({ "text": TEXT }).as_object().cloned().unwrap();
    let mut samples = Vec::with_capacity(RESTART_RUNS);
    for _ in 0..RESTART_RUNS {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let begin = Instant::now();
        let crashed = supervisor.call(Call::tool("crash", Map::new())).await;
        assert!(crashed.is_err(), "the crash call fails");
        supervisor
            .call(Call::tool("echo", echo_args.clone()).with_timeout(Duration::from_secs(10)))
            .await
            .expect("served again");
        samples.push(begin.elapsed());
    }
    supervisor.shutdown().await;
    samples.sort();
    let median = samples[RESTART_RUNS / 2];
    let first = Duration::from_millis(FIRST_BACKOFF_MS);
    report.add(
        "restart",
        "crash to serving again",
        &format!(
            "crash to serving again: median {}, max {} (first backoff {}: {} over it)",
            ms(median),
            ms(samples[RESTART_RUNS - 1]),
            ms(first),
            ms(median.saturating_sub(first)),
        ),
        json!({
            "medianMs": millis(median),
            "maxMs": millis(samples[RESTART_RUNS - 1]),
            "firstBackoffMs": FIRST_BACKOFF_MS,
            "overBackoffMs": millis(median.saturating_sub(first)),
        }),
    );
}
