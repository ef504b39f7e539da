//! A host that speaks raw JSON lines, to see exactly what a plugin writes.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Lines};

/// A guard against hangs, never a measure of speed.
pub(crate) const HANG_GUARD: Duration = Duration::from_mins(1);

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

pub(crate) struct Wire {
    lines: Lines<BufReader<Reader>>,
    writer: Option<Writer>,
    /// Messages read while waiting for something else, oldest first.
    seen: VecDeque<Value>,
}

impl Wire {
    pub(crate) fn new(
        reader: impl AsyncRead + Unpin + Send + 'static,
        writer: impl AsyncWrite + Unpin + Send + 'static,
    ) -> Self {
        Self {
            lines: BufReader::new(Box::new(reader) as Reader).lines(),
            writer: Some(Box::new(writer)),
            seen: VecDeque::new(),
        }
    }

    /// An in-memory pair: the wire, and the plugin's ends.
    pub(crate) fn memory() -> (
        Self,
        impl AsyncRead + Unpin + Send + 'static,
        impl AsyncWrite + Unpin + Send + 'static,
    ) {
        let (host, plugin) = tokio::io::duplex(256 * 1024);
        let (host_read, host_write) = tokio::io::split(host);
        let (plugin_read, plugin_write) = tokio::io::split(plugin);
        (Self::new(host_read, host_write), plugin_read, plugin_write)
    }

    pub(crate) async fn send(&mut self, message: &Value) {
        let writer = self.writer.as_mut().expect("the wire is open");
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        writer.write_all(&line).await.unwrap();
        writer.flush().await.unwrap();
    }

    pub(crate) async fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Sends a request without waiting for its answer.
    pub(crate) async fn send_request(&mut self, id: i64, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
    }

    /// Sends a request and returns its response (the whole message).
    pub(crate) async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send_request(id, method, params).await;
        self.response(id).await
    }

    /// The response to `id`; other messages are kept for later.
    pub(crate) async fn response(&mut self, id: impl Into<Value>) -> Value {
        let id = id.into();
        let is_answer = |m: &Value| m["id"] == id && m.get("method").is_none();
        if let Some(i) = self.seen.iter().position(is_answer) {
            return self.seen.remove(i).unwrap();
        }
        loop {
            let message = self
                .read()
                .await
                .unwrap_or_else(|| panic!("EOF before the response to {id}"));
            if is_answer(&message) {
                return message;
            }
            self.seen.push_back(message);
        }
    }

    /// Sends `line` and a newline as they are.
    pub(crate) async fn send_line(&mut self, line: &str) {
        let writer = self.writer.as_mut().expect("the wire is open");
        writer.write_all(line.as_bytes()).await.unwrap();
        writer.write_all(b"\n").await.unwrap();
        writer.flush().await.unwrap();
    }

    /// Waits for a `log` notification with `message`.
    pub(crate) async fn log(&mut self, message: &str) -> Value {
        if let Some(i) = self
            .seen
            .iter()
            .position(|m| m["method"] == "log" && m["params"]["message"] == message)
        {
            return self.seen.remove(i).unwrap();
        }
        loop {
            let next = self
                .read()
                .await
                .unwrap_or_else(|| panic!("EOF before the log {message:?}"));
            if next["method"] == "log" && next["params"]["message"] == message {
                return next;
            }
            self.seen.push_back(next);
        }
    }

    /// The next line, which must be a JSON-RPC message; `None` at EOF.
    pub(crate) async fn read(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(HANG_GUARD, self.lines.next_line())
            .await
            .expect("the plugin wrote nothing for a minute")
            .expect("reading the plugin's output")?;
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the plugin wrote a line that is not JSON ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "not a JSON-RPC message: {line}");
        Some(message)
    }

    /// Reads everything up to EOF.
    pub(crate) async fn drain(&mut self) -> Vec<Value> {
        let mut rest: Vec<Value> = self.seen.drain(..).collect();
        while let Some(message) = self.read().await {
            rest.push(message);
        }
        rest
    }

    /// Closes the plugin's input: it reads EOF.
    pub(crate) async fn close(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.shutdown().await;
        }
    }
}

/// `initialize` params for plugin `id` with `config`.
pub(crate) fn initialize_params(id: &str, config: &Value) -> Value {
    json!({
        "protocolVersions": ["1"],
        "host": {"name": "wire"},
        "pluginId": id,
        "config": config,
        "limits": {"maxMessageBytes": 16_777_216, "maxConcurrentRequests": 16, "shutdownTimeoutMs": 3000},
        "capabilities": {"runtime": ["host/callMethod", "host/getConfig"]},
    })
}

/// The error code of a response, or `None` for a success.
pub(crate) fn code(response: &Value) -> Option<i64> {
    response.get("error").map(|e| e["code"].as_i64().unwrap())
}
