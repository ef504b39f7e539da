//! A scripted host for driving a plugin process line by line.
//!
//! The plugins under test are the strangers here: this client writes exactly the bytes a
//! test asks for (garbage included) and hands back every line the plugin writes, raw and
//! parsed. Every wait has a generous hang guard so that a broken plugin fails the test
//! with its stderr instead of hanging it; the process group is killed and reaped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any single wait may take before the test is declared hung. Generous: the
/// machines are shared and slow, and no test asserts on time.
pub(crate) const HANG_GUARD: Duration = Duration::from_mins(1);

/// One line the plugin wrote to stdout.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) raw: String,
    pub(crate) json: Value,
}

/// A plugin process with piped stdio.
pub(crate) struct PluginProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<String>>,
    /// Disconnects when the stderr reader has read to EOF.
    stderr_done: Receiver<()>,
    name: String,
    /// Messages read while looking for something else (notifications, plugin requests).
    pub(crate) skipped: Vec<Line>,
}

impl PluginProcess {
    /// Starts `program args` in `root` with a host-like environment: scrubbed, plus
    /// `OUTPOST_PROTOCOL` and `OUTPOST_PLUGIN_ID` unless `by_hand`.
    pub(crate) fn spawn(
        root: &Path,
        program: &str,
        args: &[String],
        plugin_id: &str,
        by_hand: bool,
    ) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(root)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in ["PATH", "HOME", "LANG", "TZ", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        if !by_hand {
            command
                .env("OUTPOST_PROTOCOL", "1")
                .env("OUTPOST_PLUGIN_ID", plugin_id);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start `{program}` in {}: {error}", root.display())
        });

        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        let name = format!("{program} {}", args.join(" "));
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let raw = String::from_utf8_lossy(&buf)
                    .trim_end_matches('\n')
                    .to_owned();
                let json = serde_json::from_str(&raw).unwrap_or(Value::Null);
                if tx.send(Line { raw, json }).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        let (stderr_open, stderr_done) = mpsc::channel::<()>();
        thread::spawn(move || {
            let _open = stderr_open;
            let mut buf = [0_u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_done,
            name,
            skipped: Vec::new(),
        }
    }

    /// What the plugin wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Writes bytes as they are.
    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|error| panic!("{}: cannot write to stdin: {error}", self.name));
    }

    /// Writes one line (a newline is added).
    pub(crate) fn send_line(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.send_bytes(&bytes);
    }

    pub(crate) fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string());
    }

    pub(crate) fn request_no_wait(&mut self, id: Value, method: &str, params: Value) {
        self.send(&envelope([
            ("id", id),
            ("method", method.into()),
            ("params", params),
        ]));
    }

    pub(crate) fn notify(&mut self, method: &str, params: Value) {
        self.send(&envelope([("method", method.into()), ("params", params)]));
    }

    /// The next line from the plugin.
    pub(crate) fn next_line(&mut self) -> Line {
        match self.lines.recv_timeout(HANG_GUARD) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no line within {HANG_GUARD:?}; stderr:\n{}",
                self.name,
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{}: stdout closed while a line was expected (exit {:?}); stderr:\n{}",
                self.name,
                self.child.try_wait().ok().flatten(),
                self.stderr()
            ),
        }
    }

    /// The next response (a message with `result` or `error` and no `method`), keeping
    /// notifications and plugin requests read on the way in `skipped`.
    pub(crate) fn next_response(&mut self) -> Line {
        loop {
            let line = self.next_line();
            if line.json.get("method").is_none() {
                return line;
            }
            self.skipped.push(line);
        }
    }

    /// The response to `id`, skipping other messages (kept in `skipped`).
    pub(crate) fn response_to(&mut self, id: &Value) -> Line {
        loop {
            let line = self.next_line();
            if line.json.get("method").is_none() && line.json.get("id") == Some(id) {
                return line;
            }
            self.skipped.push(line);
        }
    }

    /// Sends a request and returns its response.
    pub(crate) fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        let wanted = id.clone();
        self.request_no_wait(id, method, params);
        self.response_to(&wanted).json
    }

    /// Sends a request and returns its `result`, failing on an error response.
    pub(crate) fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        let response = self.request(id, method, params);
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("{}: `{method}` failed: {response}", self.name),
        }
    }

    /// The next request the plugin sends to the host, skipping other messages.
    pub(crate) fn next_plugin_request(&mut self) -> Value {
        loop {
            let line = self.next_line();
            if line.json.get("method").is_some() && line.json.get("id").is_some() {
                return line.json;
            }
            self.skipped.push(line);
        }
    }

    /// Closes stdin: EOF for the plugin.
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit (hang guard: then kill and fail), and for what it
    /// wrote to stderr to be read (for a moment: a child of its may keep the pipe open).
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(5));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: did not exit within {HANG_GUARD:?}; stderr:\n{}",
                self.name,
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads every remaining line until the plugin closes stdout.
    pub(crate) fn drain(&mut self) -> Vec<Line> {
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(HANG_GUARD) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => return rest,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: stdout still open after {HANG_GUARD:?}", self.name)
                }
            }
        }
    }
}

/// A JSON-RPC message: `"jsonrpc": "2.0"` and the given members.
fn envelope<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut message = serde_json::Map::new();
    message.insert("jsonrpc".to_owned(), "2.0".into());
    for (name, value) in members {
        message.insert(name.to_owned(), value);
    }
    Value::Object(message)
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let pgid = nix::unistd::Pid::from_raw(
                i32::try_from(self.child.id()).expect("pids fit in i32"),
            );
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
