//! The gateway API, measured beside the same calls made in process, in the same run.
//!
//! `cargo bench -p outpost --bench gateway_api` (`-- latency throughput reload` for some
//! parts only; `-- --json` for one JSON object on stdout, for scripts)
//!
//! This binary is the benchmark; started with `--minimal-plugin` it is the plugin
//! measured with (the hand-written one of `supervisor/benches/data_plane.rs`). One
//! plugin, one `outpost serve` (the release build of this package), one in-process
//! `Supervisor` on the same config:
//!
//! - `latency`: one call at a time to the plugin's `echo` tool, median and p99, in
//!   process, over the WebSocket API (with jsonrpsee's client, and with a lean client
//!   that costs next to nothing, to see the server's own share) and over HTTP
//!   (keep-alive), in alternating rounds; and, as the transport's floor, the lean client
//!   against a bare jsonrpsee server (this binary with `--bare-server`) that answers at
//!   once with no plugin behind it;
//! - `throughput`: 64 calls in flight, calls per second, the same four ways, median
//!   round of each: 64 caller tasks for in process, jsonrpsee's WebSocket client (one
//!   connection) and HTTP (a pool of connections); one task keeping 64 requests
//!   outstanding for the lean client. The CPU each process spent per call is shown;
//! - `reload`: 100 plugins, one of them changed: `Supervisor::apply` in process, and
//!   `config.reload` through the API (which reads the config and runs the control plane
//!   first), each checking that the 99 others kept their processes.
//!
//! docs/performance.md holds the targets and the figures. For a profiler,
//! `OUTPOST_BENCH_ONLY=webSocket` (or `inProcess`, `webSocketLeanClient`, `http`) runs the
//! latency and throughput rounds of that one way only, and `OUTPOST_BENCH_SERVE=PROGRAM`
//! starts PROGRAM (a copy of `outpost`, or a script that runs it under strace or
//! valgrind) with `serve`'s arguments instead of this package's `outpost`.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT as _;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use outpost_supervisor::{Call, Supervisor, control};
use serde_json::{Map, Value, json};

#[path = "../../benches/support/minimal_plugin.rs"]
mod minimal;

const ROUNDS: usize = 10;
const LATENCY_CALLS: usize = 500;
const THROUGHPUT_CALLS: usize = 16_384;
const IN_FLIGHT: usize = 64;
const FLEET: usize = 100;
const RELOADS: usize = 5;
const TOKEN: &str = "bench-token-0123456789abcdef";
const TEXT: &str = "the quick brown fox jumps over the lazy dog";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--minimal-plugin") {
        return minimal::minimal_plugin();
    }
    if args.iter().any(|arg| arg == "--bare-server") {
        return bare_server();
    }
    // `cargo test --benches` runs benches with no `--bench`: build, do not measure.
    if !args.iter().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    let json = args.iter().any(|arg| arg == "--json");
    let only: Vec<String> = args
        .into_iter()
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime
        .block_on(async { tokio::spawn(async move { bench(&only).await }).await })
        .expect("the benchmark ran");
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    }
    ExitCode::SUCCESS
}

async fn bench(only: &[String]) -> Value {
    let wanted = |part: &str| only.is_empty() || only.iter().any(|name| name == part);
    let mut report = Map::new();
    eprintln!(
        "gateway API benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    if wanted("latency") || wanted("throughput") {
        let setup = Setup::new(1);
        let paths = Paths::start(&setup).await;
        if wanted("latency") {
            report.insert("latency".into(), latency(&paths).await);
        }
        if wanted("throughput") {
            report.insert("throughput".into(), throughput(&paths).await);
        }
        paths.stop().await;
    }
    if wanted("reload") {
        report.insert("reload".into(), reload().await);
    }
    Value::Object(report)
}

// ---- the setup: plugin roots, a config, a server ----

/// Plugin roots and a config for `plugins` minimal plugins, in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    api: std::net::SocketAddr,
    plugins: usize,
}

impl Setup {
    fn new(plugins: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let api = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let setup = Self {
            config: dir.path().join("outpost.json5"),
            dir,
            api,
            plugins,
        };
        for i in 0..plugins {
            let root = setup.dir.path().join(format!("p{i:03}"));
            std::fs::create_dir_all(&root).expect("a plugin root");
            let exe = std::env::current_exe().expect("the bench's own path");
            let manifest = json!({
                "id": format!("p{i:03}"),
                "configSchema": {"type": "object"},
                "contracts": {"tools": if i == 0 { json!(["echo"]) } else { json!([]) }},
                "outpost": {
                    "command": exe.file_name().expect("a file name").to_string_lossy(),
                    "args": ["--minimal-plugin"],
                },
            });
            std::fs::write(root.join("openclaw.plugin.json"), manifest.to_string())
                .expect("a manifest");
        }
        setup.write_config(None);
        setup
    }

    /// Writes the config; `changed` gets a config value of its own.
    fn write_config(&self, changed: Option<(usize, u64)>) {
        let exe = std::env::current_exe().expect("the bench's own path");
        let paths: Vec<String> = (0..self.plugins).map(|i| format!("p{i:03}")).collect();
        let entries: Map<String, Value> = (0..self.plugins)
            .map(|i| {
                let config = match changed {
                    Some((which, value)) if which == i => json!({"generation": value}),
                    _ => json!({}),
                };
                (
                    format!("p{i:03}"),
                    json!({"enabled": true, "config": config}),
                )
            })
            .collect();
        let config = json!({
            "plugins": {"load": {"paths": paths}, "entries": entries},
            "outpost": {
                "binPath": [exe.parent().expect("a directory")],
                "api": {"listen": self.api.to_string()},
                "metrics": {"sampleMs": 0},
                "defaults": {"health": {"intervalMs": 0}},
            },
        });
        std::fs::write(&self.config, config.to_string()).expect("the config");
    }
}

/// The ways to the same plugin.
struct Paths {
    supervisor: Arc<Supervisor>,
    server: Child,
    ws: Arc<WsClient>,
    lean: Arc<tokio::sync::Mutex<Lean>>,
    http: HttpClient,
    /// [`bare_server`], and the lean client connected to it.
    bare: Arc<Child>,
    bare_lean: Arc<tokio::sync::Mutex<Lean>>,
}

type Stream = tokio_util::compat::Compat<tokio::net::TcpStream>;

/// A WebSocket client that does as little as it can: one connection, requests written
/// from prepared text, answers checked for `"result"` and nothing else.
struct Lean {
    sender: soketto::connection::Sender<Stream>,
    receiver: soketto::connection::Receiver<Stream>,
    answer: Vec<u8>,
    next_id: u64,
}

impl Lean {
    async fn connect(address: std::net::SocketAddr) -> Self {
        use tokio_util::compat::TokioAsyncReadCompatExt as _;
        let socket = tokio::net::TcpStream::connect(address)
            .await
            .expect("a connection");
        socket.set_nodelay(true).expect("no delay");
        let host = address.to_string();
        let mut client = soketto::handshake::Client::new(socket.compat(), &host, "/");
        let bearer = format!("Bearer {TOKEN}");
        let headers = [soketto::handshake::client::Header {
            name: "Authorization",
            value: bearer.as_bytes(),
        }];
        client.set_headers(&headers);
        match client.handshake().await.expect("a handshake") {
            soketto::handshake::ServerResponse::Accepted { .. } => {}
            other => panic!("the WebSocket upgrade was refused: {other:?}"),
        }
        let (sender, receiver) = client.into_builder().finish();
        Self {
            sender,
            receiver,
            answer: Vec::with_capacity(4096),
            next_id: 0,
        }
    }

    async fn send(&mut self) {
        self.next_id += 1;
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"call","params":{{"kind":"tool","name":"echo","args":{{"text":"{TEXT}"}}}}}}"#,
            self.next_id
        );
        self.sender
            .send_text_owned(request)
            .await
            .expect("a request");
    }

    async fn receive(&mut self) {
        self.answer.clear();
        self.receiver
            .receive_data(&mut self.answer)
            .await
            .expect("an answer");
        assert!(
            self.answer.windows(8).any(|w| w == b"\"result\""),
            "{}",
            String::from_utf8_lossy(&self.answer)
        );
    }

    async fn call(&mut self) {
        self.send().await;
        self.sender.flush().await.expect("a flush");
        self.receive().await;
    }

    /// `total` calls, `in_flight` outstanding at any moment, from this one task.
    async fn pipeline(&mut self, total: usize, in_flight: usize) {
        for _ in 0..in_flight.min(total) {
            self.send().await;
        }
        self.sender.flush().await.expect("a flush");
        let mut sent = in_flight.min(total);
        for _ in 0..total {
            self.receive().await;
            if sent < total {
                self.send().await;
                self.sender.flush().await.expect("a flush");
                sent += 1;
            }
        }
    }
}

fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("a header value"),
    );
    headers
}

fn spawn_server(setup: &Setup) -> Child {
    let program = std::env::var_os("OUTPOST_BENCH_SERVE")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_outpost").into());
    Command::new(program)
        .args(["serve", "--config"])
        .arg(&setup.config)
        .env("OUTPOST_API_TOKEN", TOKEN)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("outpost serve runs")
}

/// `--bare-server`: a jsonrpsee server with nothing behind it, configured as the
/// gateway API is (WebSocket and HTTP, the same limits, a multi-threaded runtime with
/// the default workers), whose `call` answers what the `echo` tool answers without
/// reading its params. Prints its address, runs until stdin closes. What jsonrpsee and
/// the socket cost alone, measured with the lean client.
fn bare_server() -> ExitCode {
    use tokio::io::AsyncReadExt as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let config = jsonrpsee::server::ServerConfig::builder()
            .max_request_body_size(16 * 1024 * 1024 + 64 * 1024)
            .max_response_body_size(u32::MAX)
            .max_connections(256)
            .max_subscriptions_per_connection(64)
            .set_message_buffer_capacity(1024)
            .build();
        let server = jsonrpsee::server::Server::builder()
            .set_config(config)
            .build("127.0.0.1:0")
            .await
            .expect("a bare server");
        println!("{}", server.local_addr().expect("an address"));
        let mut module = jsonrpsee::RpcModule::new(());
        module
            .register_async_method("call", |_, _, _| async {
                Ok::<_, jsonrpsee::types::ErrorObjectOwned>(
                    json!({"content": [{"type": "text", "text": TEXT}]}),
                )
            })
            .expect("a method");
        let handle = server.start(module);
        let mut rest = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut rest).await;
        let _ = handle.stop();
    });
    ExitCode::SUCCESS
}

fn spawn_bare_server() -> (Child, std::net::SocketAddr) {
    use std::io::BufRead as _;
    let mut child = Command::new(std::env::current_exe().expect("the bench's own path"))
        .arg("--bare-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the bare server runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("its stdout"))
        .read_line(&mut line)
        .expect("its address");
    let address = line.trim().parse().expect("an address");
    (child, address)
}

/// Waits until the server's API answers and every plugin is ready.
async fn wait_ready(http: &HttpClient, plugins: usize) {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        if let Ok(answer) = http
            .request::<Value, _>("registry.snapshot", ObjectParams::new())
            .await
        {
            let ready = answer["plugins"]
                .as_array()
                .map_or(0, |p| p.iter().filter(|p| p["state"] == "ready").count());
            if ready == plugins {
                return;
            }
        }
        assert!(Instant::now() < deadline, "outpost serve never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Paths {
    async fn start(setup: &Setup) -> Self {
        let inventory = control::load(&setup.config).expect("the config loads");
        let supervisor = Supervisor::start(inventory.plugin_specs()).expect("a supervisor");
        assert!(supervisor.wait_settled(Duration::from_mins(1)).await);
        let server = spawn_server(setup);
        let url = format!("http://{}", setup.api);
        let http = HttpClientBuilder::default()
            .set_headers(headers())
            .build(&url)
            .expect("an HTTP client");
        wait_ready(&http, setup.plugins).await;
        let ws = WsClientBuilder::default()
            .set_headers(headers())
            .max_concurrent_requests(4 * IN_FLIGHT)
            .build(format!("ws://{}", setup.api))
            .await
            .expect("a WebSocket client");
        let lean = Lean::connect(setup.api).await;
        let (bare, address) = spawn_bare_server();
        let bare_lean = Lean::connect(address).await;
        Self {
            supervisor: Arc::new(supervisor),
            server,
            ws: Arc::new(ws),
            lean: Arc::new(tokio::sync::Mutex::new(lean)),
            http,
            bare: Arc::new(bare),
            bare_lean: Arc::new(tokio::sync::Mutex::new(bare_lean)),
        }
    }

    async fn stop(mut self) {
        self.supervisor.shutdown().await;
        // The bare server ends when its stdin closes.
        if let Some(mut bare) = Arc::into_inner(self.bare) {
            drop(bare.stdin.take());
            let _ = bare.wait();
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.server.id()).expect("a pid")),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.server.wait();
    }
}

fn echo_arguments() -> Map<String, Value> {
    json!({ "text": TEXT })
        .as_object()
        .cloned()
        .expect("an object")
}

fn call_params() -> ObjectParams {
    let mut params = ObjectParams::new();
    params.insert("kind", "tool").expect("params");
    params.insert("name", "echo").expect("params");
    params.insert("args", echo_arguments()).expect("params");
    params
}

/// One call each way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    InProcess,
    WebSocket,
    LeanWebSocket,
    Http,
    /// The lean client and [`bare_server`]: jsonrpsee with no plugin behind it.
    Bare,
}

impl Way {
    const ALL: [Way; 5] = [
        Way::InProcess,
        Way::WebSocket,
        Way::LeanWebSocket,
        Way::Http,
        Way::Bare,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::InProcess => "in process",
            Way::WebSocket => "WebSocket API",
            Way::LeanWebSocket => "  lean client",
            Way::Http => "HTTP API",
            Way::Bare => "bare jsonrpsee",
        }
    }

    /// Not left out by `OUTPOST_BENCH_ONLY`.
    fn measured(self) -> bool {
        std::env::var("OUTPOST_BENCH_ONLY").map_or(true, |only| only == self.key())
    }

    fn key(self) -> &'static str {
        match self {
            Way::InProcess => "inProcess",
            Way::WebSocket => "webSocket",
            Way::LeanWebSocket => "webSocketLeanClient",
            Way::Http => "http",
            Way::Bare => "bareJsonrpsee",
        }
    }
}

async fn call(paths: &Paths, way: Way) {
    match way {
        Way::InProcess => {
            paths
                .supervisor
                .call(Call::tool("echo", echo_arguments()))
                .await
                .expect("a call");
        }
        Way::WebSocket => {
            paths
                .ws
                .request::<Value, _>("call", call_params())
                .await
                .expect("a call");
        }
        Way::LeanWebSocket => paths.lean.lock().await.call().await,
        Way::Bare => paths.bare_lean.lock().await.call().await,
        Way::Http => {
            paths
                .http
                .request::<Value, _>("call", call_params())
                .await
                .expect("a call");
        }
    }
}

// ---- the measurements ----

async fn latency(paths: &Paths) -> Value {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Way::ALL.len()];
    for _ in 0..20 {
        for way in Way::ALL {
            call(paths, way).await;
        }
    }
    for _ in 0..ROUNDS {
        for (i, way) in Way::ALL.into_iter().enumerate() {
            if !way.measured() {
                samples[i].push(Duration::ZERO);
                continue;
            }
            for _ in 0..LATENCY_CALLS {
                let begin = Instant::now();
                call(paths, way).await;
                samples[i].push(begin.elapsed());
            }
        }
    }
    eprintln!(
        "\nlatency, one call at a time ({ROUNDS} rounds of {LATENCY_CALLS} calls each way, alternating)"
    );
    let mut report = Map::new();
    let mut p50s = Vec::new();
    for (way, samples) in Way::ALL.into_iter().zip(samples) {
        let (p50, p99) = percentiles(samples);
        eprintln!(
            "  {:<14} p50 {:>8}  p99 {:>8}",
            way.name(),
            us(p50),
            us(p99)
        );
        report.insert(
            way.key().into(),
            json!({"p50Us": micros(p50), "p99Us": micros(p99)}),
        );
        p50s.push(p50);
    }
    let ws_over = p50s[1].saturating_sub(p50s[0]);
    let lean_over = p50s[2].saturating_sub(p50s[0]);
    let http_over = p50s[3].saturating_sub(p50s[0]);
    eprintln!(
        "  the WebSocket API adds {} to the p50 ({} with the lean client; target: at most 30 us); HTTP adds {}",
        us(ws_over),
        us(lean_over),
        us(http_over)
    );
    eprintln!("  bare jsonrpsee: the lean client and a jsonrpsee server with no plugin behind it");
    report.insert("webSocketAddedUs".into(), json!(micros(ws_over)));
    report.insert(
        "webSocketLeanClientAddedUs".into(),
        json!(micros(lean_over)),
    );
    report.insert("httpAddedUs".into(), json!(micros(http_over)));
    Value::Object(report)
}

async fn throughput(paths: &Paths) -> Value {
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); Way::ALL.len()];
    // CPU time per call of this process (the callers), the server and the plugins.
    let mut cpu: Vec<[f64; 3]> = vec![[0.0; 3]; Way::ALL.len()];
    let server = paths.server.id();
    let bare = paths.bare.id();
    let paths = Arc::new(Paths {
        supervisor: paths.supervisor.clone(),
        server: Command::new("true").spawn().expect("a placeholder"),
        ws: paths.ws.clone(),
        lean: paths.lean.clone(),
        http: paths.http.clone(),
        bare: paths.bare.clone(),
        bare_lean: paths.bare_lean.clone(),
    });
    for _ in 0..ROUNDS.div_ceil(2) {
        for (i, way) in Way::ALL.into_iter().enumerate() {
            if !way.measured() {
                rounds[i].push(1.0);
                continue;
            }
            let server = if way == Way::Bare { bare } else { server };
            let before = [
                cpu_seconds(std::process::id()),
                cpu_seconds(server),
                plugin_cpu_seconds(),
            ];
            let begin = Instant::now();
            if matches!(way, Way::LeanWebSocket | Way::Bare) {
                let lean = if way == Way::Bare {
                    &paths.bare_lean
                } else {
                    &paths.lean
                };
                lean.lock()
                    .await
                    .pipeline(THROUGHPUT_CALLS, IN_FLIGHT)
                    .await;
            } else {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..IN_FLIGHT {
                    let paths = paths.clone();
                    tasks.spawn(async move {
                        for _ in 0..THROUGHPUT_CALLS / IN_FLIGHT {
                            call(&paths, way).await;
                        }
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("a caller task");
                }
            }
            #[expect(clippy::cast_precision_loss, reason = "call counts fit an f64")]
            rounds[i].push(THROUGHPUT_CALLS as f64 / begin.elapsed().as_secs_f64());
            let after = [
                cpu_seconds(std::process::id()),
                cpu_seconds(server),
                plugin_cpu_seconds(),
            ];
            for part in 0..3 {
                cpu[i][part] += after[part] - before[part];
            }
        }
    }
    eprintln!(
        "\nthroughput, {IN_FLIGHT} calls in flight from {IN_FLIGHT} tasks ({} rounds of {THROUGHPUT_CALLS} calls each way, alternating; median round)",
        ROUNDS.div_ceil(2)
    );
    let mut report = Map::new();
    let medians: Vec<f64> = rounds.into_iter().map(median).collect();
    for (way, rate) in Way::ALL.into_iter().zip(&medians) {
        eprintln!(
            "  {:<14} {:>9.0} calls/s  ({:.0}% of in process)",
            way.name(),
            rate,
            rate / medians[0] * 100.0
        );
        report.insert(way.key().into(), json!({"callsPerSecond": rate.round()}));
    }
    #[expect(clippy::cast_precision_loss, reason = "call counts fit an f64")]
    let calls = (THROUGHPUT_CALLS * ROUNDS.div_ceil(2)) as f64;
    eprintln!(
        "  CPU per call: callers (this process) / outpost serve (or the bare server) / plugins"
    );
    for (way, spent) in Way::ALL.into_iter().zip(&cpu) {
        let per = spent.map(|seconds| seconds / calls * 1e6);
        report.insert(
            format!("{}CpuUsPerCall", way.key()),
            json!({"callers": per[0], "server": per[1], "plugins": per[2]}),
        );
        eprintln!(
            "  {:<14} {:>6.1} us / {:>6.1} us / {:>6.1} us",
            way.name(),
            per[0],
            per[1],
            per[2]
        );
    }
    eprintln!("  target: the WebSocket API at least 50% of in process");
    report.insert("webSocketRatio".into(), json!(medians[1] / medians[0]));
    report.insert(
        "webSocketLeanClientRatio".into(),
        json!(medians[2] / medians[0]),
    );
    report.insert("httpRatio".into(), json!(medians[3] / medians[0]));
    report.insert("bareJsonrpseeRatio".into(), json!(medians[4] / medians[0]));
    Value::Object(report)
}

async fn reload() -> Value {
    let setup = Setup::new(FLEET);
    // In process: apply a new set of specs with one changed.
    let inventory = control::load(&setup.config).expect("the config loads");
    let supervisor = Supervisor::start(inventory.plugin_specs()).expect("a supervisor");
    assert!(supervisor.wait_settled(Duration::from_mins(2)).await);
    let pids = |snapshot: outpost_supervisor::RegistrySnapshot| -> Vec<(String, Option<u32>)> {
        snapshot
            .plugins
            .into_iter()
            .map(|p| (p.id, p.pid))
            .collect()
    };
    let mut applies = Vec::new();
    for generation in 1..=RELOADS {
        setup.write_config(Some((FLEET / 2, generation as u64)));
        let specs = control::load(&setup.config)
            .expect("the config loads")
            .plugin_specs();
        let before = pids(supervisor.snapshot());
        let begin = Instant::now();
        let applied = supervisor.apply(specs).await.expect("apply");
        applies.push(begin.elapsed());
        assert_eq!(applied.restarted.len(), 1);
        assert_eq!(applied.unchanged.len(), FLEET - 1);
        assert!(supervisor.wait_settled(Duration::from_mins(1)).await);
        let after = pids(supervisor.snapshot());
        let kept = before.iter().zip(&after).filter(|(a, b)| a == b).count();
        if kept != FLEET - 1 {
            let differ: Vec<_> = before.iter().zip(&after).filter(|(a, b)| a != b).collect();
            eprintln!(
                "generation {generation}: {differ:?}; changed: {:?}",
                before.get(FLEET / 2)
            );
        }
        assert_eq!(kept, FLEET - 1, "the 99 others keep their processes");
    }
    supervisor.shutdown().await;

    // Through the API: the config file changes, `config.reload` reads and applies it.
    setup.write_config(None);
    let mut server = spawn_server(&setup);
    let http = HttpClientBuilder::default()
        .set_headers(headers())
        .request_timeout(Duration::from_mins(2))
        .build(format!("http://{}", setup.api))
        .expect("an HTTP client");
    wait_ready(&http, FLEET).await;
    let mut reloads = Vec::new();
    for generation in 1..=RELOADS {
        setup.write_config(Some((FLEET / 2, generation as u64)));
        let begin = Instant::now();
        let answer: Value = http
            .request("config.reload", ObjectParams::new())
            .await
            .expect("a reload");
        reloads.push(begin.elapsed());
        assert_eq!(
            answer["applied"]["unchanged"].as_array().map(Vec::len),
            Some(FLEET - 1)
        );
        wait_ready(&http, FLEET).await;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(server.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = server.wait();

    let (apply, _) = percentiles(applies);
    let (api, _) = percentiles(reloads);
    eprintln!(
        "\nreload, {FLEET} plugins with one changed (median of {RELOADS}; the 99 others kept their processes)"
    );
    eprintln!(
        "  Supervisor::apply          {} (target: under 50 ms)",
        ms(apply)
    );
    eprintln!(
        "  config.reload (API)        {} (reads the config and runs the control plane first)",
        ms(api)
    );
    json!({"applyMs": millis(apply), "configReloadMs": millis(api)})
}

// ---- small helpers ----

/// User and system CPU time of `pid` so far (from /proc: 10 ms resolution, fine over a
/// round of calls).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |t| {
        t.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    #[expect(clippy::cast_precision_loss, reason = "a small constant")]
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks / per_second
}

/// CPU time of every minimal plugin process (in process and under the server).
fn plugin_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(16).any(|w| w == b"--minimal-plugin"))
        })
        .map(cpu_seconds)
        .sum()
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into the samples"
        )]
        let index = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[index]
    };
    (at(0.5), at(0.99))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}
