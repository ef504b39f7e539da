//! The `fixture` family (and `stream.stderr-flood`): deeper checks for plugins that
//! declare the conformance fixture capability (docs/protocol.md §13).

use std::time::{Duration, Instant};

use outpost_protocol::{ErrorCode, ErrorObject, RequestId};
use serde_json::{Value, json};

use super::Runner;
use super::show::{first_difference, show_error, show_outcome};
use crate::checks::CheckId::{
    self, FixtureCallHost, FixtureCancel, FixtureConcurrency, FixtureEcho, FixtureLargeEcho,
    FixtureLog, FixtureProgress, StreamStderrFlood,
};
use crate::session::{Answer, ECHO_METHOD, EventKind, Session, seconds};
use crate::verdict::{Explain, Verdict, ensure, fail};

/// Whether a `fixture/callHost` result is the expected one.
type Judge = dyn Fn(&Value) -> bool;

impl Runner<'_> {
    pub(super) async fn fixture_step(&self, s: &mut Session, check: CheckId) -> Verdict {
        match check {
            FixtureEcho => self.fixture_echo(s).await,
            FixtureLog => self.fixture_log(s).await,
            FixtureProgress => self.fixture_progress(s).await,
            FixtureCallHost => self.fixture_call_host(s).await,
            FixtureConcurrency => self.fixture_concurrency(s).await,
            FixtureCancel => self.fixture_cancel(s).await,
            StreamStderrFlood => self.fixture_stderr(s).await,
            FixtureLargeEcho => self.fixture_large_echo(s).await,
            other => unreachable!("{other:?} is not a fixture step"),
        }
    }

    /// A fixture method's outcome.
    async fn fixture_call(
        &self,
        s: &mut Session,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, ErrorObject>, crate::verdict::NotPassed> {
        let answer = s
            .call(method, params, self.timeout())
            .await
            .or_explain(s, &format!("the answer to `{method}`"))?;
        Ok(answer.outcome)
    }

    async fn fixture_echo(&self, s: &mut Session) -> Verdict {
        let value = json!({
            "text": "plain ascii",
            "unicode": "héllo wörld — 日本語 — 🎉",
            "escapes": "quote \" backslash \\ slash / tab \t newline \n cr \r nul \u{0000} unit-sep \u{001f} del \u{007f} ls \u{2028} ps \u{2029}",
            "numbers": [0, -1, 2_147_483_647, -2_147_483_648, 0.5, -2.25, 1e-7, 6.02e23],
            "booleans": [true, false],
            "null": null,
            "empty": {"object": {}, "array": [], "string": ""},
            "nested": [[[{"deep": [1, [2, [3]]]}]]],
        });
        let result = self
            .fixture_call(s, "fixture/echo", json!({"value": value}))
            .await?
            .map_err(|e| {
                fail(format!(
                    "`fixture/echo` was answered with {}",
                    show_error(&e)
                ))
            })?;
        let got = result.get("value").cloned().unwrap_or(Value::Null);
        ensure(got == value, || {
            format!(
                "the value came back changed: {}",
                first_difference(&value, &got, "value")
            )
        })?;
        Ok("the value came back unchanged".to_owned())
    }

    async fn fixture_log(&self, s: &mut Session) -> Verdict {
        let mark = s.mark();
        let params = json!({"level": "notice", "message": "conformance log ✓ ünïcødé", "logger": "conformance", "fields": {"k": 1}});
        self.fixture_call(s, "fixture/log", params.clone())
            .await?
            .map_err(|e| {
                fail(format!(
                    "`fixture/log` was answered with {}",
                    show_error(&e)
                ))
            })?;
        let logged = s.events_since(mark).iter().any(|e| match &e.kind {
            EventKind::Notification(n) if n.method == "log" => n.params.as_ref().is_some_and(|p| {
                p.get("level") == params.get("level") && p.get("message") == params.get("message")
            }),
            _ => false,
        });
        ensure(logged, || {
            "no `log` notification with level \"notice\" and the message sent arrived before the answer to `fixture/log`".to_owned()
        })?;
        Ok("the `log` notification came before the answer".to_owned())
    }

    async fn fixture_progress(&self, s: &mut Session) -> Verdict {
        let steps = 5;
        let id = s
            .request("fixture/progress", json!({"steps": steps}))
            .await
            .or_explain(s, "the request to be written")?;
        let mark = s.mark();
        let answer = s
            .wait(&id, self.timeout())
            .await
            .or_explain(s, "the answer to `fixture/progress`")?;
        let mut seen = Vec::new();
        let mut problems = Vec::new();
        for event in s.events_since(mark) {
            let EventKind::Notification(n) = &event.kind else {
                continue;
            };
            if n.method != "$/progress" {
                continue;
            }
            let params = n.params.clone().unwrap_or(Value::Null);
            let Some(pid) = params.get("id").and_then(RequestId::from_value) else {
                continue;
            };
            if pid != id {
                if pid.to_string().trim_matches('"') == id.to_string().trim_matches('"') {
                    problems.push(format!("a `$/progress` carried id {pid}, not {id} as sent (keep the id's JSON type)"));
                }
                continue;
            }
            if event.at > answer.at {
                problems.push("a `$/progress` arrived after the answer".to_owned());
            }
            if params.get("total").and_then(Value::as_f64) != Some(f64::from(steps)) {
                problems.push(format!(
                    "`total` is {}, expected {steps}",
                    params.get("total").unwrap_or(&Value::Null)
                ));
            }
            seen.push(
                params
                    .get("progress")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN),
            );
        }
        let expected: Vec<f64> = (1..=steps).map(f64::from).collect();
        if seen != expected {
            problems.push(format!(
                "progress values {seen:?}, expected {expected:?} in order before the answer"
            ));
        }
        if let Err(e) = &answer.outcome {
            problems.push(format!(
                "`fixture/progress` was answered with {}",
                show_error(e)
            ));
        }
        problems.dedup();
        ensure(problems.is_empty(), || problems.join("; "))?;
        Ok("5 progress notifications in order, then the answer".to_owned())
    }

    async fn fixture_call_host(&self, s: &mut Session) -> Verdict {
        let config = Value::Object(self.plan.config.clone());
        let error_code = |r: &Value| r.get("error")?.get("code")?.as_i64();
        let cases: Vec<(Value, Box<Judge>, &str)> = vec![
            (
                json!({"method": "ping", "params": {}}),
                Box::new(|r: &Value| r.get("result") == Some(&json!({}))),
                "{\"result\": {}}",
            ),
            (
                json!({"method": "host/getConfig", "params": {}}),
                Box::new(move |r: &Value| {
                    r.get("result").and_then(|result| result.get("config")) == Some(&config)
                }),
                "{\"result\": {\"config\": <the config sent in initialize>, \"gateway\": {}}}",
            ),
            (
                json!({"method": "host/callMethod", "params": {"method": ECHO_METHOD, "params": {"text": "ünï ✓"}}}),
                Box::new(|r: &Value| r.get("result") == Some(&json!({"text": "ünï ✓"}))),
                "{\"result\": {\"text\": \"ünï ✓\"}}",
            ),
            (
                json!({"method": "host/callMethod", "params": {"method": "nobody.nothing", "params": {}}}),
                Box::new(move |r: &Value| error_code(r) == Some(-32008)),
                "{\"error\": {\"code\": -32008, ...}}",
            ),
            (
                json!({"method": "conformance/unknown", "params": {}}),
                Box::new(move |r: &Value| error_code(r) == Some(-32601)),
                "{\"error\": {\"code\": -32601, ...}}",
            ),
        ];
        let mut problems = Vec::new();
        for (params, ok, expected) in cases {
            let method = params["method"].as_str().unwrap_or_default().to_owned();
            let mark = s.mark();
            let outcome = self.fixture_call(s, "fixture/callHost", params).await?;
            let asked = s
                .events_since(mark)
                .iter()
                .any(|e| matches!(&e.kind, EventKind::Request { method: m } if *m == method));
            if !asked {
                problems.push(format!(
                    "`fixture/callHost` for `{method}` did not send `{method}` to the host"
                ));
                continue;
            }
            match outcome {
                Ok(result) if ok(&result) => {}
                Ok(result) => problems.push(format!(
                    "`fixture/callHost` for `{method}` answered {result}; expected {expected}"
                )),
                Err(e) => problems.push(format!(
                    "`fixture/callHost` for `{method}` was answered with {}",
                    show_error(&e)
                )),
            }
        }
        ensure(problems.is_empty(), || problems.join("; "))?;
        Ok("ping, host/getConfig, host/callMethod (found and not found) and an unknown method went to the host and back".to_owned())
    }

    async fn fixture_concurrency(&self, s: &mut Session) -> Verdict {
        let mut sleeps = Vec::new();
        for ms in [900, 600, 300] {
            let id = s
                .request("fixture/sleep", json!({"ms": ms}))
                .await
                .or_explain(s, "the sleeps to be written")?;
            sleeps.push((ms, id));
        }
        let ping = s
            .request("ping", json!({}))
            .await
            .or_explain(s, "the ping to be written")?;
        let budget = self.timeout() + Duration::from_millis(900);
        for id in std::iter::once(&ping).chain(sleeps.iter().map(|(_, id)| id)) {
            s.wait(id, budget)
                .await
                .or_explain(s, &format!("the answer to request {id}"))?;
        }
        let order: Vec<String> = s
            .arrivals()
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(|id| {
                if *id == ping {
                    "ping".to_owned()
                } else {
                    sleeps
                        .iter()
                        .find(|(_, sid)| sid == id)
                        .map_or_else(|| id.to_string(), |(ms, _)| format!("sleep {ms}"))
                }
            })
            .collect();
        let expected = ["ping", "sleep 300", "sleep 600", "sleep 900"];
        ensure(order == expected, || {
            format!(
                "sent sleep 900, sleep 600, sleep 300, ping; answers came in the order {}: the plugin handles requests one at a time. Read stdin continuously and run handlers concurrently (§4)",
                order.join(", ")
            )
        })?;
        Ok("answers came in the order ping, sleep 300, sleep 600, sleep 900".to_owned())
    }

    async fn fixture_cancel(&self, s: &mut Session) -> Verdict {
        let id = s
            .request("fixture/sleep", json!({"ms": 60_000}))
            .await
            .or_explain(s, "the sleep to be written")?;
        let _ = s.settle(Duration::from_millis(100)).await;
        let _ = s.notify("$/cancel", json!({"id": id})).await;
        let cancelled_at = Instant::now();
        let answer = s
            .wait(&id, self.timeout())
            .await
            .or_explain(s, "the answer to a cancelled 60 s `fixture/sleep`")
            .map_err(|e| {
                e.amend(|details| format!("{details}: `$/cancel` did not stop the sleep"))
            })?;
        match answer {
            Answer {
                outcome: Err(e),
                at,
            } if e.code == ErrorCode::Cancelled => Ok(format!(
                "a 60 s sleep was answered -32800 {} after `$/cancel`",
                seconds(at.saturating_duration_since(cancelled_at))
            )),
            answer => Err(fail(format!(
                "the cancelled 60 s sleep was answered with {}; expected error -32800",
                show_outcome(&answer.outcome)
            ))),
        }
    }

    async fn fixture_stderr(&self, s: &mut Session) -> Verdict {
        let bytes: u64 = 4 * 1024 * 1024;
        let before = s.stderr_bytes();
        let flood = s
            .request("fixture/stderr", json!({"bytes": bytes}))
            .await
            .or_explain(s, "the request to be written")?;
        let ping = s.request("ping", json!({})).await;
        let mut problems = Vec::new();
        match s.wait(&flood, self.timeout()).await {
            Ok(Answer { outcome: Ok(_), .. }) => {}
            Ok(Answer {
                outcome: Err(e), ..
            }) => problems.push(format!(
                "`fixture/stderr` was answered with {}",
                show_error(&e)
            )),
            Err(stall) => {
                problems.push(s.explain(&stall, "the answer to `fixture/stderr` (4 MiB)"));
            }
        }
        if let Ok(ping) = ping
            && let Err(stall) = s.wait(&ping, self.timeout()).await
        {
            problems.push(s.explain(&stall, "the answer to a `ping` sent during the flood"));
        }
        // The drain may lag behind the answer a little.
        let deadline = Instant::now() + Duration::from_secs(2);
        while s.stderr_bytes() - before + 1024 < bytes && Instant::now() < deadline {
            let _ = s.settle(Duration::from_millis(20)).await;
        }
        let got = s.stderr_bytes() - before;
        if problems.is_empty() && got + 1024 < bytes {
            problems.push(format!("asked for {bytes} bytes on stderr, {got} arrived"));
        }
        ensure(problems.is_empty(), || problems.join("; "))?;
        Ok(format!(
            "{got} bytes on stderr; requests were answered meanwhile"
        ))
    }

    async fn fixture_large_echo(&self, s: &mut Session) -> Verdict {
        let limit = self.options.max_message_bytes;
        // ASCII only: how a plugin escapes non-ASCII text changes the answer's size.
        let overhead = json!({"jsonrpc": "2.0", "id": 1_000_000, "method": "fixture/echo", "params": {"value": ""}})
            .to_string()
            .len();
        let size = limit.saturating_sub(overhead + 512);
        let text: String = "outpost conformance large echo "
            .chars()
            .cycle()
            .take(size)
            .collect();
        let result = self
            .fixture_call(s, "fixture/echo", json!({"value": text}))
            .await?
            .map_err(|e| {
                fail(format!(
                    "a {size}-byte echo (answer under the {limit}-byte limit) was answered with {}",
                    show_error(&e)
                ))
            })?;
        let got = result.get("value").and_then(Value::as_str);
        ensure(got == Some(text.as_str()), || {
            format!(
                "sent a {size}-byte string; got back a different value ({} bytes)",
                got.map_or(0, str::len)
            )
        })?;
        Ok(format!(
            "a {size}-byte string came back intact (limit {limit})"
        ))
    }
}
