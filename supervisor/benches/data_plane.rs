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
//!   are on PATH), in alternating rounds;
//! - `throughput`: 64 calls in flight, calls per second, raw vs supervisor, in
//!   alternating rounds (the median round of each). The supervisor's calls come from 64
//!   tasks (a gateway's request handlers) and, for comparison, from one task;
//! - `spawn`: start to ready of one Rust plugin (spawn + handshake), median of runs;
//! - `fleet`: 100 Rust plugins from start to all ready;
//! - `memory`: the supervisor's resident memory per idle plugin, with 100 running;
//! - `restart`: from a crash to serving again, with the first backoff at 250 ms.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use outpost_protocol::ManifestField;
use outpost_sdk::{Context, Error, Plugin, Tool, ToolResult};
use outpost_supervisor::{
    Call, Declarations, LaunchSpec, PluginSpec, SupervisionPolicy, Supervisor,
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
        .into_iter()
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    // On a worker thread, as a gateway's own request handlers run (a `block_on`
    // thread would add a thread hand-off to every call).
    runtime
        .block_on(async { tokio::spawn(async move { bench(&only).await }).await })
        .expect("the benchmark ran");
    ExitCode::SUCCESS
}

// ---- the helper programs ----

#[path = "support/minimal_plugin.rs"]
mod minimal;

use minimal::{answer_lines, minimal_plugin};

#[derive(serde::Deserialize)]
struct EchoArgs {
    text: String,
}

async fn echo(_ctx: Context, args: EchoArgs) -> Result<ToolResult, Error> {
    Ok(ToolResult::text(args.text))
}

async fn crash(_ctx: Context, _args: Value) -> Result<ToolResult, Error> {
    std::process::exit(1)
}

fn plugin() -> ExitCode {
    // One binary serves every plugin id of the `fleet` measurement.
    let id = std::env::var(outpost_protocol::ENV_PLUGIN_ID).unwrap_or_else(|_| "bench".into());
    Plugin::builder(id)
        .tool(
            Tool::new("echo", "Returns its text").input_schema(json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            })),
            echo,
        )
        .tool(Tool::new("crash", "Exits at once, as a crash"), crash)
        .run()
}

/// `--raw-echo`: copies each line back.
fn raw_echo() -> ExitCode {
    answer_lines(|line, out| {
        out.extend_from_slice(line);
        Some(())
    })
}

// ---- the measurements ----

async fn bench(only: &[String]) {
    let wanted = |part: &str| only.is_empty() || only.iter().any(|name| name == part);
    println!("data plane benchmark ({} cores)", cores());
    if wanted("latency") {
        latencies().await;
    }
    if wanted("throughput") {
        throughputs().await;
    }
    if wanted("spawn") {
        spawn().await;
    }
    if wanted("fleet") {
        fleet().await;
    }
    if wanted("restart") {
        restart().await;
    }
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

/// The two baselines: a byte echo (the floor of two pipe hops) and a JSON-RPC echo: the
/// minimal plugin driven without the supervisor, so the same wire work without Outpost
/// (a request serialized, parsed, answered, parsed).
const BASELINES: [(&str, bool); 2] = [
    ("raw NDJSON echo over a pipe (bytes)", false),
    ("raw NDJSON echo over a pipe (JSON-RPC)", true),
];

async fn latencies() {
    let mut baselines = BASELINES.map(|(_, json)| (RawEcho::start(json), Vec::new()));
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
    for (what, spec, tool, arguments) in interpreted_examples() {
        targets.push(Target::start(what, spec, tool, arguments).await);
    }
    // Warm up every path once, then alternate.
    for round in 0..=ROUNDS {
        for (echo, samples) in &mut baselines {
            for index in 0..LATENCY_CALLS {
                let sample = echo.round_trip(index).await;
                if round > 0 {
                    samples.push(sample);
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
    for ((what, _), (echo, samples)) in BASELINES.iter().zip(baselines) {
        let (p50, p99) = percentiles(samples);
        println!("latency     {what}: p50 {}, p99 {}", us(p50), us(p99));
        floors.push(p50);
        echo.stop().await;
    }
    for target in targets {
        let (p50, p99) = percentiles(target.samples);
        println!(
            "latency     {}: p50 {} ({:.2}x bytes, {:.2}x JSON-RPC), p99 {}",
            target.what,
            us(p50),
            p50.as_secs_f64() / floors[0].as_secs_f64(),
            p50.as_secs_f64() / floors[1].as_secs_f64(),
            us(p99)
        );
        target.supervisor.shutdown().await;
    }
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

async fn throughputs() {
    let mut baselines = BASELINES.map(|(_, json)| (RawEcho::start(json), Vec::new()));
    let mut minimal = rust_spec("minimal", policy(&json!({})));
    minimal.launch.args = vec!["--minimal-plugin".into()];
    let sdk = Arc::new(start(vec![rust_spec("bench", policy(&json!({})))]).await);
    let minimal = Arc::new(start(vec![minimal]).await);
    let mut targets = Vec::new();
    for callers in [Callers::Tasks, Callers::OneTask] {
        targets.push((
            "supervisor -> Rust plugin on outpost-sdk",
            sdk.clone(),
            callers,
            Vec::new(),
        ));
        targets.push((
            "supervisor -> minimal Rust plugin, blocking std",
            minimal.clone(),
            callers,
            Vec::new(),
        ));
    }
    for round in 0..=ROUNDS {
        for (echo, samples) in &mut baselines {
            let rate = echo.throughput().await;
            if round > 0 {
                samples.push(rate);
            }
        }
        for (_, supervisor, callers, samples) in &mut targets {
            let rate = throughput(supervisor, *callers).await;
            if round > 0 {
                samples.push(rate);
            }
        }
    }
    let mut floors = Vec::new();
    for ((what, _), (echo, samples)) in BASELINES.iter().zip(baselines) {
        let rate = median(samples);
        println!("throughput  {what}, {IN_FLIGHT} in flight: {rate:.0} calls/s");
        floors.push(rate);
        echo.stop().await;
    }
    for (what, _, callers, samples) in targets {
        let rate = median(samples);
        println!(
            "throughput  {what}, {}: {rate:.0} calls/s ({:.0}% of bytes, {:.0}% of JSON-RPC)",
            callers.label(),
            100.0 * rate / floors[0],
            100.0 * rate / floors[1],
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

async fn spawn() {
    let mut spawns = Vec::with_capacity(SPAWN_RUNS);
    for _ in 0..SPAWN_RUNS {
        let begin = Instant::now();
        let supervisor = start(vec![rust_spec("bench", policy(&json!({})))]).await;
        spawns.push(begin.elapsed());
        supervisor.shutdown().await;
    }
    spawns.sort();
    println!(
        "spawn       one Rust plugin, start to ready (spawn + handshake): median {}, min {}, max {} ({SPAWN_RUNS} runs)",
        ms(spawns[SPAWN_RUNS / 2]),
        ms(spawns[0]),
        ms(spawns[SPAWN_RUNS - 1]),
    );
}

/// 100 plugins: start to all ready, and the supervisor's memory per idle plugin.
async fn fleet() {
    let before = resident_bytes();
    let begin = Instant::now();
    let specs = (0..FLEET)
        .map(|index| rust_spec(&format!("bench-{index:03}"), policy(&json!({}))))
        .collect();
    let fleet = start(specs).await;
    let all_ready = begin.elapsed();
    println!(
        "fleet       {FLEET} Rust plugins, start to all ready: {}",
        ms(all_ready)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_bytes();
    println!(
        "memory      supervisor RSS {} KiB before, {} KiB with {FLEET} idle plugins: {} KiB per plugin",
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / 1024 / FLEET as u64
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
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

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
async fn throughput(supervisor: &Arc<Supervisor>, callers: Callers) -> f64 {
    let arguments = json!({ "text": TEXT }).as_object().cloned().unwrap();
    let begin = Instant::now();
    match callers {
        Callers::Tasks => {
            let each = THROUGHPUT_CALLS as usize / IN_FLIGHT;
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
            futures_util::stream::iter(0..THROUGHPUT_CALLS)
                .map(|_| supervisor.call(Call::tool("echo", arguments.clone())))
                .buffer_unordered(IN_FLIGHT)
                .for_each(|result| {
                    result.expect("a call");
                    std::future::ready(())
                })
                .await;
        }
    }
    f64::from(THROUGHPUT_CALLS) / begin.elapsed().as_secs_f64()
}

/// A JSON-RPC request line the size of the supervisor's `echo` call.
fn request_line(id: usize) -> String {
    let line = json!({
        "jsonrpc": "2.0", "id": id, "method": "tool/invoke",
        "params": {"name": "echo", "arguments": {"text": TEXT}, "context": {"timeoutMs": 30000}},
    });
    format!("{line}\n")
}

/// A baseline: a child driven over two pipes without the supervisor.
struct RawEcho {
    /// Whether the child is the minimal plugin answering JSON-RPC (and the answers are
    /// parsed here), rather than the byte echo.
    json: bool,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
    answer: String,
}

impl RawEcho {
    fn start(json: bool) -> Self {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .arg(if json {
                "--minimal-plugin"
            } else {
                "--raw-echo"
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the raw echo starts");
        Self {
            json,
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            answer: String::new(),
        }
    }

    async fn round_trip(&mut self, id: usize) -> Duration {
        let begin = Instant::now();
        self.stdin
            .write_all(request_line(id).as_bytes())
            .await
            .unwrap();
        self.answer.clear();
        self.stdout.read_line(&mut self.answer).await.unwrap();
        if self.json {
            let answer: Value = serde_json::from_str(&self.answer).expect("a JSON answer");
            assert_eq!(answer["id"], id, "answers come in order");
        }
        begin.elapsed()
    }

    /// Calls per second with at most `IN_FLIGHT` lines written and not yet read back.
    async fn throughput(&mut self) -> f64 {
        let window = tokio::sync::Semaphore::new(IN_FLIGHT);
        let json = self.json;
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
async fn restart() {
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
    println!(
        "restart     crash to serving again: median {}, max {} (first backoff {}: {} over it)",
        ms(median),
        ms(samples[RESTART_RUNS - 1]),
        ms(Duration::from_millis(FIRST_BACKOFF_MS)),
        ms(median.saturating_sub(Duration::from_millis(FIRST_BACKOFF_MS))),
    );
}
