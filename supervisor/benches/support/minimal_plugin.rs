//! The minimal hand-written plugin the benchmarks measure Outpost with: the protocol
//! by hand, as docs/protocol.md describes it, on one thread with blocking std I/O (or,
//! with `--epoll` or `--tokio`, woken by the kernel's readiness events instead: the
//! floor of any plugin built on an event loop, the SDK's included).
//! Shared by `supervisor/benches/data_plane.rs` and `supervisor/cli/benches/gateway_api.rs`
//! (each includes this file with `#[path]`).

use std::process::ExitCode;

use serde_json::json;

/// `--minimal-plugin`: the protocol by hand, as docs/protocol.md describes it, on one
/// thread with blocking std I/O: the handshake, `echo`, `ping`, `shutdown`, exit at
/// EOF. What a plugin costs when it does nothing else: the lines are read with typed
/// `serde` structs that borrow from the line, and the answer is written straight into
/// the output buffer, as a careful Rust plugin would.
///
/// With `--epoll`, the same plugin waits for its input in `epoll_wait` rather than in
/// `read`; with `--tokio`, in a task on a current-thread tokio runtime (as an SDK
/// plugin does). Everything else is the same code.
pub(crate) fn minimal_plugin() -> ExitCode {
    use std::borrow::Cow;

    use serde_json::value::RawValue;

    #[derive(serde::Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
        #[serde(borrow)]
        method: Cow<'a, str>,
        #[serde(borrow)]
        params: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Invoke<'a> {
        #[serde(borrow)]
        arguments: Arguments<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Arguments<'a> {
        #[serde(borrow)]
        text: Cow<'a, str>,
    }
    #[derive(serde::Serialize)]
    struct Answer<'a, R> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        result: R,
    }
    fn write_answer(
        out: &mut Vec<u8>,
        id: &RawValue,
        result: impl serde::Serialize,
    ) -> serde_json::Result<()> {
        serde_json::to_writer(
            out,
            &Answer {
                jsonrpc: "2.0",
                id,
                result,
            },
        )
    }
    #[derive(serde::Serialize)]
    struct Echoed<'a> {
        content: [Text<'a>; 1],
    }
    #[derive(serde::Serialize)]
    struct Text<'a> {
        r#type: &'static str,
        text: &'a str,
    }

    let plugin_id =
        std::env::var(outpost_protocol::ENV_PLUGIN_ID).unwrap_or_else(|_| "bench".into());
    let answer = move |line: &[u8], out: &mut Vec<u8>| {
        let request = serde_json::from_slice::<Request<'_>>(line).ok()?;
        let id = request.id;
        let written = match &*request.method {
            "tool/invoke" => {
                let invoke: Invoke<'_> = serde_json::from_str(request.params?.get()).ok()?;
                let text = &invoke.arguments.text;
                let result = Echoed {
                    content: [Text {
                        r#type: "text",
                        text,
                    }],
                };
                write_answer(out, id, result)
            }
            "initialize" => write_answer(
                out,
                id,
                json!({
                    "protocolVersion": "1",
                    "plugin": {"id": plugin_id},
                    "capabilities": {},
                    "registrations": [{
                        "kind": "tool", "name": "echo", "description": "Returns its text",
                        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
                    }],
                }),
            ),
            "ping" | "shutdown" => write_answer(out, id, json!({})),
            _ => return None,
        };
        written.ok()
    };
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--epoll") {
        answer_lines_epoll(answer)
    } else if args.iter().any(|arg| arg == "--tokio") {
        answer_lines_tokio(answer)
    } else {
        answer_lines(answer)
    }
}

/// Reads stdin line by line with blocking std I/O and writes what `answer` writes into
/// its buffer for each line (nothing when it returns `None`), one flushed line each,
/// until EOF. Both buffers are reused from line to line.
pub(crate) fn answer_lines(mut answer: impl FnMut(&[u8], &mut Vec<u8>) -> Option<()>) -> ExitCode {
    use std::io::{BufRead, Write};
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let (mut line, mut out) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        out.clear();
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if answer(text, &mut out).is_none() {
            continue;
        }
        out.push(b'\n');
        if stdout
            .write_all(&out)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// [`answer_lines`], waiting for input in `epoll_wait` (stdin non-blocking, level
/// triggered) instead of in a blocking `read`.
fn answer_lines_epoll(answer: impl FnMut(&[u8], &mut Vec<u8>) -> Option<()>) -> ExitCode {
    use std::io::{Read, Write};

    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

    let stdin = std::io::stdin();
    let flags = fcntl(&stdin, FcntlArg::F_GETFL).map(OFlag::from_bits_truncate);
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC);
    let (Ok(flags), Ok(epoll)) = (flags, epoll) else {
        return ExitCode::FAILURE;
    };
    if fcntl(&stdin, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).is_err()
        || epoll
            .add(&stdin, EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .is_err()
    {
        return ExitCode::FAILURE;
    }
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let mut lines = Lines::new(answer);
    let mut chunk = vec![0; 64 * 1024];
    let mut events = [EpollEvent::empty()];
    loop {
        match stdin.read(&mut chunk) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(n) => {
                let out = lines.take(&chunk[..n]);
                if stdout.write_all(out).and_then(|()| stdout.flush()).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let _ = epoll.wait(&mut events, EpollTimeout::NONE);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return ExitCode::FAILURE,
        }
    }
}

/// [`answer_lines`] as a task on a current-thread tokio runtime, with stdin and stdout
/// driven by its reactor (`tokio::net::unix::pipe`, as the SDK drives them).
fn answer_lines_tokio(
    answer: impl FnMut(&[u8], &mut Vec<u8>) -> Option<()> + Send + 'static,
) -> ExitCode {
    use std::os::fd::AsFd;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::unix::pipe;

    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    let served = runtime.block_on(async move {
        let input = std::io::stdin().as_fd().try_clone_to_owned()?;
        let output = std::io::stdout().as_fd().try_clone_to_owned()?;
        let mut stdin = pipe::Receiver::from_owned_fd(input)?;
        let mut stdout = pipe::Sender::from_owned_fd(output)?;
        // A task, as the SDK's session is: `block_on`'s own future is polled only after
        // one more turn of the event loop.
        let task = tokio::spawn(async move {
            let mut lines = Lines::new(answer);
            let mut chunk = vec![0; 64 * 1024];
            loop {
                let n = stdin.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                stdout.write_all(lines.take(&chunk[..n])).await?;
            }
        });
        task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    });
    if served.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Splits chunks of input into lines and collects their answers, one line each.
struct Lines<F> {
    answer: F,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    out: Vec<u8>,
}

impl<F: FnMut(&[u8], &mut Vec<u8>) -> Option<()>> Lines<F> {
    fn new(answer: F) -> Self {
        Self {
            answer,
            partial: Vec::with_capacity(4096),
            out: Vec::with_capacity(4096),
        }
    }

    /// The answers to the lines `chunk` completes.
    fn take(&mut self, chunk: &[u8]) -> &[u8] {
        self.out.clear();
        self.partial.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&byte| byte == b'\n') {
            let line = &self.partial[start..start + end];
            let mark = self.out.len();
            if (self.answer)(line, &mut self.out).is_some() {
                self.out.push(b'\n');
            } else {
                self.out.truncate(mark);
            }
            start += end + 1;
        }
        self.partial.drain(..start);
        &self.out
    }
}
