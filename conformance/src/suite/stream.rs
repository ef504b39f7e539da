//! The `stream` family: the byte stream itself. Most of it is judged at the end of the
//! run from every line the plugin wrote; `stream.tolerant-reader` sends the framing a
//! receiver must tolerate (§2.1).

use std::time::Duration;

use outpost_protocol::RequestId;

use super::Runner;
use super::show::unsolicited_since;
use crate::checks::CheckId::{
    self, HandshakeNoEarlyRequests, StreamNoContentLength, StreamOnlyMessages, StreamPlainLines,
    StreamSchemaValid, StreamWithinLimit,
};
use crate::session::Session;
use crate::traffic::Examples;
use crate::verdict::{Explain, Verdict, ensure, skip};

impl Runner<'_> {
    /// A ping behind a byte-order mark, one ending in `\r\n`, and blank lines of three
    /// kinds: the pings are answered, nothing else is.
    pub(super) async fn tolerant_reader(&self, s: &mut Session) -> Verdict {
        let ping =
            |id: &str| format!(r#"{{"jsonrpc":"2.0","id":"{id}","method":"ping","params":{{}}}}"#);
        let cases: [(&str, Option<&str>, Vec<u8>); 5] = [
            (
                "a line starting with a byte-order mark",
                Some("conformance-bom"),
                [
                    b"\xEF\xBB\xBF".as_slice(),
                    ping("conformance-bom").as_bytes(),
                    b"\n",
                ]
                .concat(),
            ),
            (
                "a line ending in \\r\\n",
                Some("conformance-crlf"),
                [ping("conformance-crlf").as_bytes(), b"\r\n"].concat(),
            ),
            ("an empty line", None, b"\n".to_vec()),
            ("a line of spaces and a tab", None, b"  \t \n".to_vec()),
            ("an empty line ending in \\r\\n", None, b"\r\n".to_vec()),
        ];
        let mut problems = Vec::new();
        for (what, id, bytes) in cases {
            let mark = s.mark();
            if let Some(id) = id {
                s.expect_answer(RequestId::from(id), "ping");
            }
            s.write(&bytes)
                .await
                .or_explain(s, "the line to be written")?;
            s.barrier(self.timeout())
                .await
                .or_explain(s, &format!("the answer to a `ping` sent after {what}"))?;
            let stray = unsolicited_since(s, mark);
            let answered = match id {
                Some(id) => s.wait(&RequestId::from(id), Duration::ZERO).await.is_ok(),
                None => true,
            };
            if !answered || !stray.is_empty() {
                let got = if stray.is_empty() {
                    "no answer".to_owned()
                } else {
                    stray.join(", ")
                };
                let expected = if id.is_some() {
                    "the ping's answer"
                } else {
                    "nothing"
                };
                problems.push(format!("{what} got {got}; expected {expected}"));
            }
        }
        ensure(problems.is_empty(), || {
            format!(
                "{}. A receiver strips one trailing \\r and a leading byte-order mark, and skips blank lines, without answering them",
                problems.join("; ")
            )
        })?;
        Ok("a ping after a byte-order mark and one ending in \\r\\n were answered; three kinds of blank line were ignored".to_owned())
    }

    /// The checks judged from every line of the run.
    pub(super) fn judge_stream(&mut self) {
        let traffic = std::mem::take(&mut *self.shared.traffic());
        let lines = traffic.lines;
        let cases: [(CheckId, &Examples, &str, &str); 6] = [
            (
                StreamOnlyMessages,
                &traffic.not_messages,
                "line",
                "that is not a protocol message",
            ),
            (
                StreamNoContentLength,
                &traffic.content_length,
                "line",
                "of LSP `Content-Length` framing: this protocol is one JSON message per line, with no headers",
            ),
            (
                StreamSchemaValid,
                &traffic.schema,
                "message",
                "that does not match the schema",
            ),
            (
                StreamWithinLimit,
                &traffic.over_limit,
                "line",
                "over the limit",
            ),
            (
                StreamPlainLines,
                &traffic.not_plain,
                "line",
                "that is not plain: write each message followed by a single \\n",
            ),
            (
                HandshakeNoEarlyRequests,
                &traffic.early_requests,
                "request",
                "sent before `initialized`: requests to the host are allowed only after it",
            ),
        ];
        for (check, examples, noun, what) in cases {
            let verdict = if !self.handshake_done && examples.count == 0 {
                Err(skip(
                    "not judged: the plugin did not complete the handshake",
                ))
            } else {
                ensure(examples.count == 0, || {
                    format!("{} {what}", examples.summary(noun))
                })
                .map(|()| format!("{lines} lines from the plugin, none at fault"))
            };
            self.results.record(check, verdict, None);
        }
    }
}
