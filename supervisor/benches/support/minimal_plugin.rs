//! The minimal hand-written plugin the benchmarks measure Outpost with: the protocol
//! by hand, as docs/protocol.md describes it, on one thread with blocking std I/O.
//! Shared by `supervisor/benches/data_plane.rs` and `supervisor/cli/benches/gateway_api.rs`
//! (each includes this file with `#[path]`).

use std::process::ExitCode;

use serde_json::json;

/// `--minimal-plugin`: the protocol by hand, as docs/protocol.md describes it, on one
/// thread with blocking std I/O: the handshake, `echo`, `ping`, `shutdown`, exit at
/// EOF. What a plugin costs when it does nothing else: the lines are read with typed
/// `serde` structs that borrow from the line, and the answer is written straight into
/// the output buffer, as a careful Rust plugin would.
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
    answer_lines(|line, out| {
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
                        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
                    }],
                }),
            ),
            "ping" | "shutdown" => write_answer(out, id, json!({})),
            _ => return None,
        };
        written.ok()
    })
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
