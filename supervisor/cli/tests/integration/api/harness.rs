//! A real `outpost serve` on fixture plugins, in a temporary directory, on free ports,
//! with a known token; and the clients the tests talk to it with.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// The token every test server requires.
pub(crate) const TOKEN: &str = "test-token-0123456789abcdef";

/// Generous: only a guard against hangs, never a performance assertion.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);

/// One fixture plugin of a test server.
#[derive(Clone, Debug)]
pub(crate) struct Plugin {
    pub(crate) id: String,
    pub(crate) mode: String,
    pub(crate) host_methods: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// Without tools (several fixtures would fight over the same tool names).
    pub(crate) no_tools: bool,
}

impl Plugin {
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            mode: "ok".to_owned(),
            host_methods: Vec::new(),
            env: Vec::new(),
            no_tools: false,
        }
    }

    pub(crate) fn host_methods(mut self, methods: &[&str]) -> Self {
        self.host_methods = methods.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn without_tools(mut self) -> Self {
        self.no_tools = true;
        self
    }
}

/// A running `outpost serve`.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    pub(crate) api: SocketAddr,
    pub(crate) http: SocketAddr,
    /// Extra settings in the `outpost` block, kept for rewrites of the config.
    extra: String,
}

/// A free port on loopback (the port may be taken again before it is used; rare).
pub(crate) fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn fixture_script() -> PathBuf {
    crate::fixtures().join("plugins/fixture.py")
}

impl Server {
    /// Starts `outpost serve` on `plugins` and waits until every one is ready.
    pub(crate) fn start(plugins: &[Plugin]) -> Self {
        Self::start_with(plugins, "")
    }

    /// [`Server::start`] with more keys for the config's `outpost` block (JSON5, each
    /// followed by a comma).
    pub(crate) fn start_with(plugins: &[Plugin], extra: &str) -> Self {
        let mut server = Self::prepare(extra);
        server.write_config(plugins);
        server.launch(plugins.len());
        server
    }

    /// A directory, ports and no process yet: write a config, then [`Server::launch`].
    pub(crate) fn prepare(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("outpost.json5");
        Self {
            child: None,
            dir,
            config,
            api: free_port(),
            http: free_port(),
            extra: extra.to_owned(),
        }
    }

    /// Starts `outpost serve` on the config and waits until `ready` plugins are.
    pub(crate) fn launch(&mut self, ready: usize) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&self.config)
            .env("OUTPOST_API_TOKEN", TOKEN)
            // The plugins' state directories go under it: this test's own.
            .env("TMPDIR", self.temp_dir())
            // Its token and registry files by default: this test's own too.
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("outpost runs");
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            // Drained to the end, so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("OUTPOST_TEST_LOG").is_some() {
                    eprintln!("serve: {line}");
                }
            }
        });
        self.child = Some(child);
        self.wait_ready(ready);
    }

    /// (Re)writes the config for `plugins`.
    pub(crate) fn write_config(&self, plugins: &[Plugin]) {
        let mut paths = Vec::new();
        let mut entries = serde_json::Map::new();
        let mut overrides = serde_json::Map::new();
        for plugin in plugins {
            let root = self.dir.path().join(&plugin.id);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::copy(fixture_script(), root.join("fixture.py")).unwrap();
            let manifest = json!({
                "id": plugin.id,
                "configSchema": {"type": "object"},
                "contracts": {"tools": ["echo", "slow", "replayable", "ask"]},
                "outpost": {"command": "python3", "args": ["fixture.py"], "entry": "fixture.py"},
            });
            std::fs::write(root.join("openclaw.plugin.json"), manifest.to_string()).unwrap();
            paths.push(Value::String(plugin.id.clone()));
            entries.insert(plugin.id.clone(), json!({"enabled": true}));
            let mut set = serde_json::Map::new();
            set.insert("FIXTURE_MODE".into(), json!(plugin.mode));
            // The sandbox lets a plugin write only in its state directory.
            let state = self.state_dir(&plugin.id);
            set.insert("FIXTURE_PIDFILE".into(), json!(state.join("pids")));
            set.insert("FIXTURE_EVENTS".into(), json!(state.join("events")));
            if plugin.no_tools {
                set.insert("FIXTURE_NO_TOOLS".into(), json!("1"));
            }
            for (name, value) in &plugin.env {
                set.insert(name.clone(), json!(value));
            }
            overrides.insert(
                plugin.id.clone(),
                json!({"env": {"set": set}, "hostMethods": plugin.host_methods}),
            );
        }
        let config = format!(
            "{{
  plugins: {{ load: {{ paths: {paths} }}, entries: {entries} }},
  outpost: {{
    api: {{ listen: '{api}', registryFile: 'registry.json' }},
    http: {{ listen: '{http}', maxBodyBytes: 4096 }},
    metrics: {{ sampleMs: 200 }},
    defaults: {{ timeouts: {{ callMs: 15000 }}, health: {{ intervalMs: 0 }}, restart: {{ initialBackoffMs: 50, jitter: 0 }} }},
    plugins: {overrides},
    {extra}
  }},
}}",
            paths = Value::Array(paths),
            entries = Value::Object(entries),
            overrides = Value::Object(overrides),
            api = self.api,
            http = self.http,
            extra = self.extra,
        );
        std::fs::write(&self.config, config).unwrap();
    }

    /// The temporary directory `serve` is given (`TMPDIR`).
    fn temp_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("tmp");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Where a plugin of this server may write: its state directory, which the
    /// supervisor makes under its temporary directory for the plugin's user (ours).
    fn state_dir(&self, id: &str) -> PathBuf {
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(self.dir.path()).unwrap());
        self.temp_dir().join(format!("outpost-{uid}")).join(id)
    }

    /// Waits until `/readyz` says ready with `count` plugins ready.
    pub(crate) fn wait_ready(&self, count: usize) {
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Ok(response) = raw(self.api, "GET", "/readyz", &[], b"")
                && response.status == 200
                && response.json()["plugins"]["ready"].as_u64() == Some(count as u64)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "outpost serve did not get {count} plugins ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    pub(crate) fn http_client(&self) -> HttpClient {
        HttpClientBuilder::default()
            .set_headers(auth_headers())
            .request_timeout(SETTLE)
            .build(self.url())
            .unwrap()
    }

    pub(crate) async fn ws_client(&self) -> WsClient {
        WsClientBuilder::default()
            .set_headers(auth_headers())
            .request_timeout(SETTLE)
            .build(format!("ws://{}", self.api))
            .await
            .unwrap()
    }

    /// A JSON-RPC request over plain HTTP with the token: the whole response.
    pub(crate) fn rpc(&self, method: &str, params: &Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = raw(
            self.api,
            "POST",
            "/",
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("content-type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()
    }

    /// The pid of a plugin's current process.
    pub(crate) fn pid(&self, id: &str) -> Option<u32> {
        let list = self.rpc("plugins.list", &json!({}));
        list["result"]["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["id"] == id)
            .and_then(|row| row["runtime"]["pid"].as_u64())
            .map(|pid| u32::try_from(pid).unwrap())
    }

    /// What a plugin's fixture recorded in its events file.
    pub(crate) fn events_of(&self, id: &str) -> String {
        std::fs::read_to_string(self.state_dir(id).join("events")).unwrap_or_default()
    }

    /// Every pid a plugin's fixture recorded.
    pub(crate) fn pids_of(&self, id: &str) -> Vec<i32> {
        std::fs::read_to_string(self.state_dir(id).join("pids"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    /// Runs the `outpost` binary against this server, with the token in the
    /// environment.
    pub(crate) fn outpost(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("OUTPOST_API_TOKEN", TOKEN)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("the server was launched");
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "outpost serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

pub(crate) fn auth_headers() -> jsonrpsee::http_client::HeaderMap {
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    headers
}

/// An HTTP response read off the wire.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection, whatever it carries.
pub(crate) fn raw(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(SETTLE))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) before it has read a large body: ignore a broken pipe.
    let _ = stream.write_all(body);
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut text: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        body.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    body
}

/// A WebSocket client that sends exactly the text it is given (jsonrpsee's client sends
/// only well-formed requests, and unsubscribes positionally).
pub(crate) struct RawWs {
    sender: soketto::connection::Sender<WsStream>,
    receiver: soketto::connection::Receiver<WsStream>,
}

type WsStream = tokio_util::compat::Compat<tokio::net::TcpStream>;

impl RawWs {
    pub(crate) async fn connect(address: SocketAddr) -> Self {
        use tokio_util::compat::TokioAsyncReadCompatExt as _;
        let socket = tokio::net::TcpStream::connect(address).await.unwrap();
        let host = address.to_string();
        let mut client = soketto::handshake::Client::new(socket.compat(), &host, "/");
        let bearer = format!("Bearer {TOKEN}");
        let headers = [soketto::handshake::client::Header {
            name: "Authorization",
            value: bearer.as_bytes(),
        }];
        client.set_headers(&headers);
        match client.handshake().await.unwrap() {
            soketto::handshake::ServerResponse::Accepted { .. } => {}
            other => panic!("the WebSocket upgrade was refused: {other:?}"),
        }
        let mut builder = client.into_builder();
        builder.set_max_message_size(64 * 1024 * 1024);
        let (sender, receiver) = builder.finish();
        Self { sender, receiver }
    }

    /// Sends one text message.
    pub(crate) async fn send(&mut self, text: &str) {
        self.sender.send_text(text).await.unwrap();
        self.sender.flush().await.unwrap();
    }

    /// The next message, as JSON.
    pub(crate) async fn receive(&mut self) -> Value {
        let mut data = Vec::new();
        tokio::time::timeout(SETTLE, self.receiver.receive_data(&mut data))
            .await
            .expect("a message in time")
            .unwrap();
        serde_json::from_slice(&data).unwrap()
    }

    /// The next message that is not a notification (an answer, or a batch of them).
    pub(crate) async fn answer(&mut self) -> Value {
        loop {
            let message = self.receive().await;
            if message.get("method").is_none() {
                return message;
            }
        }
    }

    /// One request; its answer.
    pub(crate) async fn request(&mut self, id: u64, method: &str, params: &Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&request.to_string()).await;
        let answer = self.answer().await;
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }
}

/// Waits until `check` holds, polling; a guard against hangs only.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The output of `command`, an `outpost serve` (its stdin empty) that must end by
/// itself: [`wait_exit`](crate::serve::wait_exit) kills it and fails the test after
/// [`SETTLE`].
pub(crate) fn output_within(command: &mut Command) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so a full pipe does not hold the exit up.
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = crate::serve::wait_exit(&mut child);
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Reads `stream` to its end on a thread of its own.
fn drain(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    })
}

/// Whether a process is alive (not reaped, not a zombie).
pub(crate) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.trim_start().chars().next())
            != Some('Z')
    })
}

/// The resident memory of `pid` in bytes, as the kernel reports it.
pub(crate) fn resident_bytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024.0
}

/// The `outpost` example plugins' directory.
pub(crate) fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}
