//! A fleet of 1,000 plugins under one supervisor: all ready, memory per idle plugin,
//! routing with 1,000 owners, the supervisor's CPU at rest, and a restart storm.
//!
//! ```text
//! cargo bench -p outpost-supervisor --bench fleet
//! cargo bench -p outpost-supervisor --bench fleet -- --plugins 500 --no-contain --json
//! ```
//!
//! The plugins are this binary started with `--plugin`: a plugin on outpost-sdk with a
//! tool `echo_<n>` (its own name, so the registry holds 1,000 owners) and `crash_<n>`.
//! What it reports (docs/performance.md holds the figures):
//!
//! - `ready`: from `Supervisor::start` with every plugin to all of them ready;
//! - `memory`: the supervisor's resident memory before and with every plugin idle, per
//!   plugin; and the plugins' own (the sum of their processes' `VmRSS`);
//! - `routing`: one call at a time to one plugin's tool, with the whole fleet
//!   registered, beside the same call in a supervisor of one plugin (same run);
//! - `idle`: the supervisor's CPU time (user + system, all its threads) over
//!   `--idle-secs` seconds (default 60) of rest, health pings at their default interval
//!   (15 s), as a share of one core;
//! - `storm`: 100 plugins crash at once; the healthy ones keep being called from 16
//!   callers meanwhile; their latency during the storm beside before it, and the time
//!   until all 100 are serving again.
//!
//! The machine: 2 cores and 24 GiB; 1,000 SDK plugins take about 4 GiB. Every plugin
//! holds three descriptors in the supervisor (its pipes), so the bench raises its soft
//! `RLIMIT_NOFILE` to the hard limit first.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use outpost_protocol::ManifestField;
use outpost_supervisor::{
    Call, Declarations, LaunchSpec, PluginSpec, Sandbox, SupervisionPolicy, Supervisor,
};
use serde_json::{Map, Value, json};

#[path = "support/report.rs"]
mod report;

use report::{Report, micros, millis, ratio};

const PLUGINS: usize = 1_000;
const STORM: usize = 100;
const ROUTING_CALLS: usize = 2_000;
const STORM_CALLERS: usize = 16;
const IDLE_SECS: u64 = 60;
const TEXT: &str = "the quick brown fox jumps over the lazy dog";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--plugin") {
        return plugin();
    }
    // `cargo test --benches` runs benches with no `--bench`: build, do not measure.
    if !args.iter().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    let number = |flag: &str, default: u64| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
            .map_or(default, |n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("{flag} takes a number"))
            })
    };
    let plugins = usize::try_from(number("--plugins", PLUGINS as u64)).expect("a count");
    let idle = Duration::from_secs(number("--idle-secs", IDLE_SECS));
    let contain = !args.iter().any(|arg| arg == "--no-contain");
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let report = Report::new("fleet", &args);
    let report = runtime
        .block_on(async {
            tokio::spawn(async move { fleet(plugins, idle, contain, report).await }).await
        })
        .expect("the benchmark ran");
    report.finish();
    ExitCode::SUCCESS
}

// ---- the plugin ----

#[path = "support/sdk_plugin.rs"]
mod sdk;

#[path = "support/proc_status.rs"]
mod proc_status;

use proc_status::status_kib;

fn plugin() -> ExitCode {
    let id = std::env::var(outpost_protocol::ENV_PLUGIN_ID).unwrap_or_else(|_| "p0".into());
    sdk::sdk_plugin(id.clone(), echo_tool(&id), crash_tool(&id))
}

fn echo_tool(id: &str) -> String {
    format!("echo_{id}")
}

fn crash_tool(id: &str) -> String {
    format!("crash_{id}")
}

// ---- the measurements ----

fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn spec(id: &str, contain: bool) -> PluginSpec {
    let exe = std::env::current_exe().expect("the bench's own path");
    let root = exe.parent().expect("a directory").to_path_buf();
    // Defaults throughout (health pings every 15 s), but a restart that comes back at
    // once, so the storm measures the supervisor rather than the backoff.
    let policy = SupervisionPolicy::from_layers([&json!({
        "restart": {"initialBackoffMs": 10, "jitter": 0.0, "maxCrashes": 1000},
    })])
    .expect("a valid policy");
    let declarations = Declarations::default()
        .with(ManifestField::Contracts("tools"), &echo_tool(id))
        .with(ManifestField::Contracts("tools"), &crash_tool(id));
    let launch = LaunchSpec::new(exe, root)
        .with_args(["--plugin"])
        .with_policy(policy)
        .with_sandbox(Sandbox::default().with_contain(contain));
    PluginSpec::new(id, launch).with_declarations(declarations)
}

fn id(index: usize) -> String {
    format!("p{index:04}")
}

async fn fleet(plugins: usize, idle: Duration, contain: bool, mut report: Report) -> Report {
    report.note(&format!(
        "fleet benchmark: {plugins} plugins on outpost-sdk, contained: {contain}"
    ));
    // The baseline for routing: the same call in a supervisor of one plugin.
    let single = start(vec![spec(&id(0), contain)], Duration::from_mins(1)).await;
    let alone = routing(&single, 0).await;
    single.shutdown().await;

    let before = resident_kib();
    let cpu_before = cpu_time();
    let begin = Instant::now();
    let specs = (0..plugins)
        .map(|index| spec(&id(index), contain))
        .collect();
    let supervisor = Arc::new(start(specs, Duration::from_mins(10)).await);
    let ready = begin.elapsed();
    let cpu_start = cpu_time().saturating_sub(cpu_before);
    report.add(
        "ready",
        &format!("{plugins} plugins"),
        &format!(
            "{plugins} plugins, start to all ready: {} ({} per plugin; the supervisor's CPU {})",
            ms(ready),
            us(ready / u32::try_from(plugins).unwrap_or(1)),
            ms(cpu_start),
        ),
        json!({
            "plugins": plugins,
            "allReadyMs": millis(ready),
            "supervisorCpuMs": millis(cpu_start),
        }),
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_kib();
    let plugin_kib: u64 = supervisor
        .snapshot()
        .plugins
        .iter()
        .filter_map(|plugin| plugin.pid)
        .map(|pid| status_kib(&format!("/proc/{pid}/status"), "VmRSS:"))
        .sum();
    let per_plugin = after.saturating_sub(before) / plugins as u64;
    report.add(
        "memory",
        "supervisor per idle plugin",
        &format!(
            "supervisor RSS {before} KiB before, {after} KiB with {plugins} idle plugins: {per_plugin} KiB per plugin; the plugins' own RSS {} KiB in all ({} KiB each)",
            plugin_kib,
            plugin_kib / plugins as u64
        ),
        json!({
            "beforeKib": before,
            "afterKib": after,
            "perPluginKib": per_plugin,
            "pluginsRssKib": plugin_kib,
            "pluginRssKibEach": plugin_kib / plugins as u64,
        }),
    );

    let crowded = routing(&supervisor, plugins / 2).await;
    for ((what, lone), crowd) in [("p50", alone.0), ("p99", alone.1)]
        .into_iter()
        .zip([crowded.0, crowded.1])
    {
        report.add(
            "routing",
            &format!("call {what}, {plugins} owners beside 1"),
            &format!(
                "one call at a time to one plugin's tool, {what}: {} with {plugins} plugins registered, {} with 1 ({:.2}x)",
                us(crowd),
                us(lone),
                crowd.as_secs_f64() / lone.as_secs_f64()
            ),
            json!({
                "statistic": what,
                "fleetUs": micros(crowd),
                "aloneUs": micros(lone),
                "ratio": ratio(crowd.as_secs_f64(), lone.as_secs_f64()),
            }),
        );
    }

    let cpu_before = cpu_time();
    let rest = Instant::now();
    tokio::time::sleep(idle).await;
    let cpu = cpu_time().saturating_sub(cpu_before);
    let share = cpu.as_secs_f64() / rest.elapsed().as_secs_f64();
    report.add(
        "idle",
        "supervisor CPU at rest",
        &format!(
            "supervisor at rest with {plugins} idle plugins (health pings every 15 s): {} of CPU in {} s = {:.3}% of one core",
            ms(cpu),
            idle.as_secs(),
            share * 100.0
        ),
        json!({
            "cpuMs": millis(cpu),
            "overSecs": idle.as_secs(),
            "percentOfCore": (share * 100_000.0).round() / 1000.0,
        }),
    );

    storm(&supervisor, plugins, &mut report).await;
    let begin = Instant::now();
    supervisor.shutdown().await;
    report.add(
        "shutdown",
        &format!("{plugins} plugins"),
        &format!("shutdown of {plugins} plugins: {}", ms(begin.elapsed())),
        json!({"ms": millis(begin.elapsed())}),
    );
    report
}

/// The p50 and p99 of calls to plugin `index`'s echo, one at a time, after a warm-up.
async fn routing(supervisor: &Supervisor, index: usize) -> (Duration, Duration) {
    let tool = echo_tool(&id(index));
    let arguments = arguments();
    let mut samples = Vec::with_capacity(ROUTING_CALLS);
    for round in 0..2 {
        for _ in 0..ROUTING_CALLS {
            let begin = Instant::now();
            supervisor
                .call(Call::tool(&tool, arguments.clone()))
                .await
                .expect("a call");
            if round > 0 {
                samples.push(begin.elapsed());
            }
        }
    }
    percentiles(samples)
}

/// 100 plugins crash at once while 16 callers keep calling the healthy ones.
async fn storm(supervisor: &Arc<Supervisor>, plugins: usize, report: &mut Report) {
    let storm = STORM.min(plugins / 2);
    let healthy: Vec<usize> = (storm..plugins).collect();
    // Before: the healthy plugins' latency under the same callers, without a storm.
    let calm = call_healthy(supervisor, &healthy, Duration::from_secs(3), None).await;
    let done = Arc::new(AtomicBool::new(false));
    let callers = {
        let (supervisor, healthy, done) = (supervisor.clone(), healthy.clone(), done.clone());
        tokio::spawn(async move {
            call_healthy(&supervisor, &healthy, Duration::from_mins(5), Some(done)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let begin = Instant::now();
    let mut crashes = tokio::task::JoinSet::new();
    for index in 0..storm {
        let supervisor = supervisor.clone();
        crashes.spawn(async move {
            let _ = supervisor
                .call(Call::tool(crash_tool(&id(index)), Map::new()))
                .await;
        });
    }
    while crashes.join_next().await.is_some() {}
    // Serving again: each crashed plugin answers a call made at once (which waits for
    // the restart within its deadline).
    let mut back = tokio::task::JoinSet::new();
    for index in 0..storm {
        let supervisor = supervisor.clone();
        back.spawn(async move {
            supervisor
                .call(
                    Call::tool(echo_tool(&id(index)), arguments())
                        .with_timeout(Duration::from_mins(1)),
                )
                .await
                .expect("served again")
        });
    }
    while let Some(done) = back.join_next().await {
        done.expect("a caller");
    }
    let recovered = begin.elapsed();
    // The healthy callers go on as long again, so "during" spans the storm and as much
    // after: the storm's share is what shows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    done.store(true, Ordering::SeqCst);
    let during = callers.await.expect("the healthy callers");
    report.add(
        "storm",
        &format!("{storm} plugins crash at once"),
        &format!(
            "{storm} plugins crash at once: all serving again after {}",
            ms(recovered)
        ),
        json!({"crashed": storm, "allServingAgainMs": millis(recovered)}),
    );
    report.add(
        "storm",
        "healthy plugins during the storm",
        &format!(
            "healthy plugins, {STORM_CALLERS} callers: p50 {} p99 {} ({} calls, {} failed) during the storm, beside p50 {} p99 {} ({} calls) before it",
            us(during.p50),
            us(during.p99),
            during.calls,
            during.failed,
            us(calm.p50),
            us(calm.p99),
            calm.calls
        ),
        json!({
            "duringP50Us": micros(during.p50),
            "duringP99Us": micros(during.p99),
            "duringCalls": during.calls,
            "duringFailed": during.failed,
            "beforeP50Us": micros(calm.p50),
            "beforeP99Us": micros(calm.p99),
            "beforeCalls": calm.calls,
            "p99Ratio": ratio(during.p99.as_secs_f64(), calm.p99.as_secs_f64()),
        }),
    );
}

struct Sampled {
    p50: Duration,
    p99: Duration,
    calls: usize,
    failed: usize,
}

/// `STORM_CALLERS` tasks calling healthy plugins in turn, for `length` or until `stop`.
async fn call_healthy(
    supervisor: &Arc<Supervisor>,
    healthy: &[usize],
    length: Duration,
    stop: Option<Arc<AtomicBool>>,
) -> Sampled {
    let end = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..STORM_CALLERS {
        let (supervisor, healthy, stop) = (supervisor.clone(), healthy.to_vec(), stop.clone());
        tasks.spawn(async move {
            let arguments = arguments();
            let mut samples = Vec::new();
            let mut failed = 0;
            let mut next = caller;
            while Instant::now() < end && !stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                let tool = echo_tool(&id(healthy[next % healthy.len()]));
                next += STORM_CALLERS;
                let begin = Instant::now();
                match supervisor.call(Call::tool(&tool, arguments.clone())).await {
                    Ok(_) => samples.push(begin.elapsed()),
                    Err(_) => failed += 1,
                }
            }
            (samples, failed)
        });
    }
    let mut samples = Vec::new();
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        let (mine, mine_failed) = done.expect("a caller");
        samples.extend(mine);
        failed += mine_failed;
    }
    let calls = samples.len();
    let (p50, p99) = percentiles(samples);
    Sampled {
        p50,
        p99,
        calls,
        failed,
    }
}

fn arguments() -> Map<String, Value> {
    json!({ "text": TEXT })
        .as_object()
        .cloned()
        .unwrap_or_default()
}

async fn start(specs: Vec<PluginSpec>, timeout: Duration) -> Supervisor {
    let ids: Vec<String> = specs.iter().map(|spec| spec.id.clone()).collect();
    let supervisor = Supervisor::start(specs).expect("the supervisor starts");
    assert!(
        supervisor.wait_settled(timeout).await,
        "the plugins did not settle"
    );
    for id in ids {
        let (state, reason) = supervisor.state(&id).expect("a known plugin");
        assert_eq!(state.to_string(), "ready", "{id}: {reason:?}");
    }
    supervisor
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    (samples[samples.len() / 2], p99)
}

/// The process's CPU time, every thread, user and system.
fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    seconds(usage.user_time()) + seconds(usage.system_time())
}

fn resident_kib() -> u64 {
    status_kib("/proc/self/status", "VmRSS:")
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
