//! The chaos soak: a million calls across several plugins while some of them crash,
//! hang, write garbage and answer slowly, checking that every call is answered exactly
//! once and that healthy plugins stay fast.
//!
//! ```text
//! cargo bench -p outpost-supervisor --bench chaos              # 1,000,000 calls
//! cargo bench -p outpost-supervisor --bench chaos -- --calls 100000 --fault-rate 0.05 --json
//! cargo bench -p outpost-supervisor --bench chaos -- --no-contain   # plugins not contained
//! ```
//!
//! The plugins run contained (their own PID, mount and user namespaces where the kernel
//! allows them) and in a Landlock sandbox, as the supervisor runs any plugin by default.
//! `--no-contain` starts them without the namespaces (the sandbox stays), to tell the
//! cost of containment in restarts apart from the rest.
//!
//! The plugins are this binary run with `--chaos-plugin`: `echo` by hand, as in the
//! data-plane bench, and, when `CHAOS_FAULTS` is set, a fault on that fraction of calls,
//! in equal parts: exit mid-call (a crash), never answer (a hang: the call times out),
//! a garbage line before the answer, an answer 200 ms late. Every plugin appends the
//! id of each call it executes to its own file, so a call executed twice is found.
//!
//! Reported: calls answered (by outcome), lost (no answer within the deadline plus
//! 5 s), misrouted (an answer with another call's text), executed twice, faults
//! injected, p50/p99 latency of healthy and chaotic plugins, and the bench process's
//! peak resident memory (it hosts the supervisor).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outpost_protocol::ManifestField;
use outpost_supervisor::{
    Answer, Call, Declarations, FsAccess, LaunchSpec, PluginSpec, PluginState, Sandbox,
    SupervisionPolicy, Supervisor,
};
use serde_json::{Map, Value, json};

#[path = "support/proc_status.rs"]
mod proc_status;

const HEALTHY: usize = 4;
const CHAOTIC: usize = 4;
/// Faults per call on a chaotic plugin: 2.5%, so 1.25% of all calls.
const FAULT_RATE: f64 = 0.025;
/// The faults a chaotic plugin injects, in equal parts (`--kinds` picks some).
const FAULT_KINDS: [&str; 4] = ["crash", "hang", "garbage", "slow"];
/// Calls in flight at once, across all plugins.
const CONCURRENCY: usize = 64;
/// Each call's deadline.
const DEADLINE: Duration = Duration::from_secs(1);
/// A call not answered this long after its deadline is lost.
const LOST_AFTER: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--chaos-plugin") {
        return chaos_plugin();
    }
    // `cargo test --benches` runs benches without `--bench`: build, do not soak.
    if !args.iter().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    let calls = args
        .iter()
        .position(|arg| arg == "--calls")
        .and_then(|at| args.get(at + 1))
        .map_or(1_000_000, |n| n.parse().expect("--calls takes a number"));
    let json = args.iter().any(|arg| arg == "--json");
    let contain = !args.iter().any(|arg| arg == "--no-contain");
    let rate = args
        .iter()
        .position(|arg| arg == "--fault-rate")
        .and_then(|at| args.get(at + 1))
        .map_or(FAULT_RATE, |n| {
            n.parse().expect("--fault-rate takes a fraction")
        });
    let kinds = args
        .iter()
        .position(|arg| arg == "--kinds")
        .and_then(|at| args.get(at + 1))
        .cloned()
        .unwrap_or_else(|| FAULT_KINDS.join(","));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime
        .block_on(async { tokio::spawn(soak(calls, rate, kinds, contain)).await })
        .expect("the soak ran");
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap()
        );
    } else {
        report.print();
    }
    if report.lost == 0 && report.misrouted == 0 && report.executed_twice == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct Report {
    calls: u64,
    elapsed: Duration,
    outcomes: BTreeMap<String, u64>,
    lost: u64,
    misrouted: u64,
    executed_twice: u64,
    faults: BTreeMap<String, u64>,
    healthy: Vec<Duration>,
    chaotic: Vec<Duration>,
    peak_rss: u64,
    restarts: u64,
}

impl Report {
    fn percentile(samples: &[Duration], per_mille: usize) -> Duration {
        samples
            .get((samples.len() * per_mille / 1000).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        json!({
            "calls": self.calls,
            "elapsedMs": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
            "answered": self.outcomes,
            "lost": self.lost,
            "misrouted": self.misrouted,
            "executedTwice": self.executed_twice,
            "faultsInjected": self.faults,
            "restarts": self.restarts,
            "healthyLatencyUs": {
                "p50": micros(Self::percentile(&self.healthy, 500)),
                "p99": micros(Self::percentile(&self.healthy, 990)),
                "p999": micros(Self::percentile(&self.healthy, 999)),
            },
            "chaoticLatencyUs": {
                "p50": micros(Self::percentile(&self.chaotic, 500)),
                "p99": micros(Self::percentile(&self.chaotic, 990)),
            },
            "peakRssBytes": self.peak_rss,
        })
    }

    fn print(&self) {
        let faults: u64 = self.faults.values().sum();
        println!(
            "chaos soak: {} calls across {HEALTHY} healthy and {CHAOTIC} chaotic plugins in {:.1} s",
            self.calls,
            self.elapsed.as_secs_f64()
        );
        println!(
            "  faults injected: {faults} ({}% of calls): {:?}",
            percent(faults, self.calls),
            self.faults
        );
        println!("  answered: {:?}", self.outcomes);
        println!(
            "  lost: {}, misrouted: {}, executed twice: {}",
            self.lost, self.misrouted, self.executed_twice
        );
        println!("  restarts: {}", self.restarts);
        println!(
            "  healthy plugins: p50 {:?}, p99 {:?}, p99.9 {:?}",
            Self::percentile(&self.healthy, 500),
            Self::percentile(&self.healthy, 990),
            Self::percentile(&self.healthy, 999)
        );
        println!(
            "  chaotic plugins: p50 {:?}, p99 {:?}",
            Self::percentile(&self.chaotic, 500),
            Self::percentile(&self.chaotic, 990)
        );
        println!(
            "  peak resident memory of the bench process (supervisor included): {} MiB",
            self.peak_rss >> 20
        );
    }
}

async fn soak(calls: u64, rate: f64, kinds: String, contain: bool) -> Report {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let specs: Vec<PluginSpec> = (0..HEALTHY + CHAOTIC)
        .map(|i| {
            let faults = if i < HEALTHY { 0.0 } else { rate };
            plugin_spec(&format!("p{i}"), faults, &kinds, dir.path(), contain)
        })
        .collect();
    let supervisor = Arc::new(Supervisor::start(specs).expect("the supervisor starts"));
    assert!(
        supervisor.wait_settled(Duration::from_secs(30)).await,
        "plugins did not start"
    );
    let next = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (supervisor, next) = (supervisor.clone(), next.clone());
            tokio::spawn(async move { worker(&supervisor, &next, calls).await })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.expect("a worker ran"));
    }
    let elapsed = began.elapsed();
    let restarts = supervisor
        .snapshot()
        .plugins
        .iter()
        .map(|plugin| plugin.restarts)
        .sum();
    for plugin in supervisor.snapshot().plugins {
        assert_ne!(plugin.state, PluginState::Failed, "{} gave up", plugin.id);
    }
    let Ok(supervisor) = Arc::try_unwrap(supervisor) else {
        unreachable!("every worker is done");
    };
    supervisor.shutdown().await;
    let (executed_twice, faults) = read_plugin_logs(dir.path());
    tally.healthy.sort();
    tally.chaotic.sort();
    Report {
        calls,
        elapsed,
        outcomes: tally.outcomes,
        lost: tally.lost,
        misrouted: tally.misrouted,
        executed_twice,
        faults,
        healthy: tally.healthy,
        chaotic: tally.chaotic,
        peak_rss: peak_rss(),
        restarts,
    }
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, u64>,
    lost: u64,
    misrouted: u64,
    healthy: Vec<Duration>,
    chaotic: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (outcome, count) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += count;
        }
        self.lost += other.lost;
        self.misrouted += other.misrouted;
        self.healthy.extend(other.healthy);
        self.chaotic.extend(other.chaotic);
    }
}

/// Takes call numbers until `calls` are taken; call `n` goes to plugin `n % 8`, as
/// its tool `echo_p<k>`, with the text `n`.
async fn worker(supervisor: &Supervisor, next: &AtomicU64, calls: u64) -> Tally {
    let mut tally = Tally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= calls {
            return tally;
        }
        let plugin = usize::try_from(n % (HEALTHY + CHAOTIC) as u64).unwrap();
        let mut arguments = Map::new();
        arguments.insert("text".into(), Value::String(n.to_string()));
        let call = Call::tool(format!("echo_p{plugin}"), arguments).with_timeout(DEADLINE);
        let begin = Instant::now();
        let outcome = tokio::time::timeout(DEADLINE + LOST_AFTER, supervisor.call(call)).await;
        let took = begin.elapsed();
        let name = match outcome {
            Err(_) => {
                tally.lost += 1;
                continue;
            }
            Ok(Ok(Answer::Tool(result))) => {
                let echoed = serde_json::to_value(&result).unwrap();
                if echoed["content"][0]["text"] != Value::String(n.to_string()) {
                    tally.misrouted += 1;
                }
                "ok".to_owned()
            }
            Ok(Ok(other)) => panic!("a tool call answered {other:?}"),
            Ok(Err(error)) => error.code.to_string(),
        };
        *tally.outcomes.entry(name).or_default() += 1;
        if plugin < HEALTHY {
            tally.healthy.push(took);
        } else {
            tally.chaotic.push(took);
        }
    }
}

fn plugin_spec(id: &str, faults: f64, kinds: &str, dir: &Path, contain: bool) -> PluginSpec {
    let exe = std::env::current_exe().expect("the bench's own path");
    let root = exe.parent().expect("a directory").to_path_buf();
    let tool = format!("echo_{id}");
    let policy = SupervisionPolicy::from_layers([&json!({
        "limits": {"maxConcurrentRequests": 16, "maxQueuedRequests": 64},
        "restart": {"initialBackoffMs": 10, "maxBackoffMs": 100, "maxCrashes": 1_000_000},
        "health": {"intervalMs": 0},
    })])
    .expect("a valid policy");
    let launch = LaunchSpec::new(exe, root)
        .with_args(["--chaos-plugin"])
        .with_env("CHAOS_TOOL", tool.clone())
        .with_env("CHAOS_FAULTS", faults.to_string())
        .with_env("CHAOS_KINDS", kinds)
        .with_env("CHAOS_LOG", dir.join(id).display().to_string())
        .with_policy(policy)
        .with_sandbox(
            Sandbox::default()
                .with_filesystem(Some(FsAccess::default().with_write(dir)))
                .with_contain(contain),
        );
    PluginSpec::new(id, launch)
        .with_declarations(Declarations::default().with(ManifestField::Contracts("tools"), &tool))
}

/// Per plugin log: one line per executed call (`x <n>`) and per fault (`f <kind>`).
fn read_plugin_logs(dir: &Path) -> (u64, BTreeMap<String, u64>) {
    let mut executed: HashMap<u64, u32> = HashMap::new();
    let mut faults = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("the log directory") {
        let file = std::fs::File::open(entry.unwrap().path()).unwrap();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.unwrap();
            match line.split_once(' ') {
                Some(("x", n)) => *executed.entry(n.parse().unwrap()).or_default() += 1,
                Some(("f", kind)) => *faults.entry(kind.to_owned()).or_default() += 1,
                _ => {}
            }
        }
    }
    let twice = executed.values().filter(|count| **count > 1).count() as u64;
    (twice, faults)
}

/// `part` as a percentage of `whole`, to two decimals.
fn percent(part: u64, whole: u64) -> String {
    let hundredths = part * 10_000 / whole.max(1);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn peak_rss() -> u64 {
    proc_status::status_kib("/proc/self/status", "VmHWM:") * 1024
}

// ---- the plugin ----

/// `--chaos-plugin`: `echo` as `CHAOS_TOOL`, with faults on `CHAOS_FAULTS` of calls.
fn chaos_plugin() -> ExitCode {
    let tool = std::env::var("CHAOS_TOOL").unwrap_or_else(|_| "echo".into());
    let id = std::env::var(outpost_protocol::ENV_PLUGIN_ID).unwrap_or_default();
    let rate: f64 = std::env::var("CHAOS_FAULTS")
        .ok()
        .and_then(|rate| rate.parse().ok())
        .unwrap_or(0.0);
    let kinds = std::env::var("CHAOS_KINDS").unwrap_or_else(|_| FAULT_KINDS.join(","));
    let kinds: Vec<&str> = kinds.split(',').collect();
    let mut log = std::env::var("CHAOS_LOG").ok().map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(path))
            .expect("the chaos log opens")
    });
    let mut note = |line: String| {
        if let Some(log) = &mut log {
            // One write per line, unbuffered: a crash loses nothing written before it.
            let _ = log.write_all(format!("{line}\n").as_bytes());
        }
    };
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut send = |value: &Value| {
        let mut line = serde_json::to_vec(value).unwrap();
        line.push(b'\n');
        stdout
            .write_all(&line)
            .and_then(|()| stdout.flush())
            .is_ok()
    };
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(id_value), Some(method)) = (message.get("id"), message["method"].as_str()) else {
            continue;
        };
        let answer = |result: Value| json!({"jsonrpc": "2.0", "id": id_value, "result": result});
        let ok = match method {
            "initialize" => send(&answer(json!({
                "protocolVersion": "1",
                "plugin": {"id": id},
                "registrations": [{
                    "kind": "tool", "name": tool, "description": "echo, with faults",
                    "inputSchema": {"type": "object"},
                }],
            }))),
            "tool/invoke" => {
                let text = message["params"]["arguments"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                note(format!("x {text}"));
                let result = answer(json!({"content": [{"type": "text", "text": text}]}));
                if rate > 0.0 && fastrand::f64() < rate {
                    match kinds[fastrand::usize(..kinds.len())] {
                        "crash" => {
                            note("f crash".into());
                            std::process::exit(1);
                        }
                        "hang" => {
                            note("f hang".into());
                            true
                        }
                        "garbage" => {
                            note("f garbage".into());
                            send(&json!("garbage: not a message")) && send(&result)
                        }
                        _ => {
                            note("f slow".into());
                            std::thread::sleep(Duration::from_millis(200));
                            send(&result)
                        }
                    }
                } else {
                    send(&result)
                }
            }
            "ping" | "shutdown" => send(&answer(json!({}))),
            _ => send(&json!({
                "jsonrpc": "2.0", "id": id_value,
                "error": {"code": -32601, "message": format!("no method {method}")},
            })),
        };
        if !ok {
            break;
        }
    }
    ExitCode::SUCCESS
}
