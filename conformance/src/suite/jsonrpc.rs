//! The `jsonrpc` family: JSON-RPC 2.0 as this protocol uses it. Ids, the standard error
//! codes and params, reused ids, and bad lines: each answered once and then forgotten,
//! never the end of the conversation.

use std::time::{Duration, Instant};

use outpost_protocol::{ErrorCode, ErrorObject, Registration, RequestId, Response};
use serde_json::{Value, json};

use super::Runner;
use super::calls::SlowRun;
use super::show::{error_of, id_type, show_error, show_outcome, show_response, unsolicited_since};
use crate::checks::CheckId::{
    JsonrpcBatchRejected, JsonrpcInvalidRequest, JsonrpcNoErrorStorm, JsonrpcParseError,
    JsonrpcSurvivesBadLines,
};
use crate::session::{Answer, EventKind, Session, Stall};
use crate::verdict::{Explain, Verdict, ensure, fail, skip};

/// The id the reused-id check sends twice.
const REUSED_ID: &str = "conformance-reused";

impl Runner<'_> {
    pub(super) async fn id_types(&self, s: &mut Session) -> Verdict {
        let ids = [
            json!("conformance-7"),
            json!("7"),
            json!(""),
            json!(7.5),
            json!(7.0),
            json!(-3),
            json!(0),
            json!(1_000_000_007),
            json!(9_007_199_254_740_991_i64),
        ];
        let mut sent = Vec::new();
        for raw in &ids {
            let id = RequestId::from_value(raw).expect("string and number ids");
            s.request_with_id(id.clone(), "ping", json!({}))
                .await
                .or_explain(s, "the pings to be written")?;
            sent.push(id);
        }
        let mark = s.mark();
        let barrier = s.barrier(self.timeout()).await;
        let mut problems = Vec::new();
        for id in &sent {
            if s.wait(id, Duration::ZERO).await.is_err() {
                problems.push(format!("no answer with id {id} ({})", id_type(id)));
            }
        }
        problems.extend(s.events_since(mark).iter().filter_map(|e| match &e.kind {
            EventKind::Unsolicited(r) => Some(match &r.id {
                Some(id) => format!(
                    "an answer with id {id} ({}), which the suite never sent",
                    id_type(id)
                ),
                None => "an error with id null".to_owned(),
            }),
            _ => None,
        }));
        if let Err(stall) = barrier {
            problems.push(s.explain(&stall, "the answer to a `ping`"));
        }
        ensure(problems.is_empty(), || {
            format!(
                "{}; a response carries its request's id with the same JSON type and value (numbers compare by value: 7.0 may come back as 7)",
                problems.join("; ")
            )
        })?;
        Ok("ids \"conformance-7\", \"7\", \"\", 7.5, 7.0, -3, 0, 1000000007 and 9007199254740991 came back with their JSON type and value".to_owned())
    }

    pub(super) async fn method_not_found(&self, s: &mut Session) -> Verdict {
        let method = "conformance/no-such-method";
        let answer = s
            .call(method, json!({}), self.timeout())
            .await
            .or_explain(s, &format!("the answer to `{method}`"))?;
        ensure(
            matches!(&answer.outcome, Err(e) if e.code == ErrorCode::MethodNotFound),
            || {
                format!(
                    "`{method}` was answered with {}; expected error -32601",
                    show_outcome(&answer.outcome)
                )
            },
        )?;
        Ok(format!("`{method}` was answered -32601"))
    }

    /// A call the plugin can decode only if it checks params: the fixture's sleep, or a
    /// registered tool, command, method... with params of the wrong type.
    fn invalid_params_probe(&self) -> Option<(String, Value)> {
        if self.fixture {
            return Some(("fixture/sleep".into(), json!({"ms": "soon"})));
        }
        let context = json!({});
        self.accepted.iter().find_map(|registration| {
            let (method, params) = match registration {
                Registration::Tool(t) => (
                    "tool/invoke",
                    json!({"name": t.name, "arguments": "not an object", "context": context}),
                ),
                Registration::Command(c) => (
                    "command/run",
                    json!({"name": c.name.to_lowercase(), "commandBody": 42, "context": context}),
                ),
                Registration::Service(_) => ("service/start", json!({"id": {"not": "a string"}})),
                Registration::HttpRoute(r) => (
                    "http/handle",
                    json!({"route": r.path, "request": "GET /", "context": context}),
                ),
                Registration::GatewayMethod(m) => (
                    "method/call",
                    json!({"method": [m.method], "context": context}),
                ),
                Registration::Hook(h) => (
                    "hook/run",
                    json!({"event": h.event, "payload": {}, "context": "none"}),
                ),
                _ => return None,
            };
            Some((method.to_owned(), params))
        })
    }

    pub(super) async fn invalid_params(&self, s: &mut Session) -> Verdict {
        let (method, params) = self.invalid_params_probe().ok_or_else(|| {
            skip("the plugin registers nothing whose params could be sent wrongly typed")
        })?;
        let answer = s
            .call(&method, params.clone(), self.timeout())
            .await
            .or_explain(
                s,
                &format!("the answer to `{method}` with wrongly typed params"),
            )?;
        let error = match answer.outcome {
            Err(e) if e.code == ErrorCode::InvalidParams => e,
            other => {
                return Err(fail(format!(
                    "`{method}` with params {params} was answered with {}; expected error -32602 (invalid params)",
                    show_outcome(&other)
                )));
            }
        };
        invalid_params_data(&error).map_err(|why| {
            fail(format!(
                "`{method}` with params {params} was answered -32602, but {why}"
            ))
        })?;
        Ok(format!(
            "`{method}` with params {params} was answered -32602"
        ))
    }

    /// A registered call (or the fixture's sleep), to send params of the wrong shape.
    fn params_shape_probe(&self) -> Option<(&'static str, Value)> {
        let checks = [
            crate::checks::CheckId::CallsTools,
            crate::checks::CheckId::CallsCommands,
            crate::checks::CheckId::CallsGatewayMethods,
            crate::checks::CheckId::CallsHttpRoutes,
            crate::checks::CheckId::CallsHooks,
            crate::checks::CheckId::CallsServices,
            crate::checks::CheckId::CallsOperations,
        ];
        let probe = checks
            .into_iter()
            .find_map(|check| self.probes(check).into_iter().next())
            .map(|probe| (probe.method, probe.params));
        probe.or_else(|| self.fixture.then(|| ("fixture/sleep", json!({"ms": 100}))))
    }

    pub(super) async fn params_shape(&self, s: &mut Session) -> Verdict {
        let line = |id: &str, method: &str, params: Option<&Value>| {
            let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
            if let Some(params) = params {
                message["params"] = params.clone();
            }
            message.to_string()
        };
        // (what, id, line, whether -32602 is expected: else `{}`)
        let mut cases: Vec<(String, String, String, bool)> = Vec::new();
        if let Some((method, params)) = self.params_shape_probe() {
            let positional: Vec<Value> = params
                .as_object()
                .map(|p| p.values().cloned().collect())
                .unwrap_or_default();
            let shapes = [
                ("an array", Value::Array(positional)),
                ("a string", json!("conformance")),
                ("a number", json!(42)),
                ("null", Value::Null),
            ];
            for (index, (what, shape)) in shapes.into_iter().enumerate() {
                let id = format!("conformance-params-{index}");
                let text = line(&id, method, Some(&shape));
                cases.push((format!("`{method}` with params {what}"), id, text, true));
            }
        }
        for (what, id, params) in [
            (
                "`ping` with params null",
                "conformance-params-ping-null",
                Some(&Value::Null),
            ),
            (
                "`ping` without params",
                "conformance-params-ping-none",
                None,
            ),
        ] {
            cases.push((
                what.to_owned(),
                id.to_owned(),
                line(id, "ping", params),
                false,
            ));
        }
        let mut problems = Vec::new();
        for (what, id, text, invalid) in &cases {
            let id = RequestId::from(id.as_str());
            s.expect_answer(id.clone(), "ping");
            let mark = s.mark();
            s.send_line(text.as_bytes())
                .await
                .or_explain(s, "the request to be written")?;
            let answer = s
                .wait_or(
                    &id,
                    mark,
                    self.timeout(),
                    |e| matches!(&e.kind, EventKind::Unsolicited(r) if r.id.is_none()),
                )
                .await
                .or_explain(s, &format!("the answer to {what}"))?;
            let problem = match answer {
                None => Some(format!(
                    "{what} ({text}) was refused with an error for id null; its id is readable, so the answer carries it"
                )),
                Some(Answer {
                    outcome: Err(e), ..
                }) if *invalid && e.code == ErrorCode::InvalidParams => None,
                // Whether the result is `{}` is calls.ping's concern.
                Some(Answer { outcome: Ok(_), .. }) if !*invalid => None,
                Some(answer) if *invalid => Some(format!(
                    "{what} ({text}) was answered with {}; expected -32602 (params are an object, and null params count as none)",
                    show_outcome(&answer.outcome)
                )),
                Some(answer) => Some(format!(
                    "{what} was answered with {}; expected its result (null or absent params are no params)",
                    show_outcome(&answer.outcome)
                )),
            };
            problems.extend(problem);
        }
        ensure(problems.is_empty(), || problems.join("; "))?;
        Ok(format!(
            "params that are an array, a string, a number or null were answered -32602; `ping` with null or no params was answered ({} requests)",
            cases.len()
        ))
    }

    pub(super) async fn notifications_unanswered(&self, s: &mut Session) -> Verdict {
        let mark = s.mark();
        let notifications = [
            (
                "conformance/notice",
                json!({"text": "an unknown notification"}),
            ),
            ("$/cancel", json!({"id": "conformance-not-in-flight"})),
            (
                "$/progress",
                json!({"id": "conformance-not-in-flight", "progress": 1}),
            ),
        ];
        for (method, params) in notifications {
            s.notify(method, params)
                .await
                .or_explain(s, "the notifications to be written")?;
        }
        s.barrier(self.timeout())
            .await
            .or_explain(s, "the answer to a `ping` sent after three notifications")?;
        let answers = unsolicited_since(s, mark);
        ensure(answers.is_empty(), || {
            format!(
                "after an unknown notification, a `$/cancel` and a `$/progress` for an id not in flight, the plugin sent {}; notifications are never answered",
                answers.join(", ")
            )
        })?;
        Ok(
            "`conformance/notice`, `$/cancel` and `$/progress` for an unknown id got no answer"
                .to_owned(),
        )
    }

    pub(super) async fn responses_unanswered(&self, s: &mut Session) -> Verdict {
        let mark = s.mark();
        let lines = [
            r#"{"jsonrpc":"2.0","id":"conformance-never-sent","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"conformance-never-sent-2","error":{"code":-32603,"message":"conformance: an error response to a request nobody sent"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"conformance: the host could not read a line (this is a test)"}}"#,
        ];
        for line in lines {
            s.send_line(line.as_bytes())
                .await
                .or_explain(s, "the responses to be written")?;
        }
        s.barrier(self.timeout())
            .await
            .or_explain(s, "the answer to a `ping` sent after three stray responses")?;
        let answers = unsolicited_since(s, mark);
        ensure(answers.is_empty(), || {
            format!(
                "after three responses the plugin never asked for, it sent {}; responses are never answered, or two peers can answer each other forever",
                answers.join(", ")
            )
        })?;
        Ok("responses to unknown ids and an error with id null got no answer".to_owned())
    }

    /// Sends one bad line, then a barrier; returns what came back in between.
    async fn bad_line(&self, s: &mut Session, line: &[u8]) -> Result<Vec<Response>, String> {
        let mark = s.mark();
        s.send_line(line)
            .await
            .map_err(|stall| s.explain(&stall, "the line to be written"))?;
        s.barrier(self.timeout())
            .await
            .map_err(|stall| s.explain(&stall, "the answer to a `ping` sent after the line"))?;
        Ok(s.events_since(mark)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Unsolicited(r) => Some(r.clone()),
                _ => None,
            })
            .collect())
    }

    /// Lines that are not JSON, not messages, and a batch: each answered once, and the
    /// plugin goes on.
    pub(super) async fn bad_lines(&mut self, s: &mut Session) {
        let started = Instant::now();
        let pid = s.process().pid();
        let mut lines = BadLines::default();

        let verdict = self.parse_errors(s, &mut lines).await;
        self.results
            .record(JsonrpcParseError, verdict, Some(started));

        let alive =
            |s: &Session, lines: &BadLines| lines.fatal.is_none() && s.usable() && s.pid() == pid;
        let started_invalid = Instant::now();
        let verdict = if alive(s, &lines) {
            self.invalid_requests(s, &mut lines).await
        } else {
            Err(skip(
                "not run: the plugin did not survive the -32700 lines (see jsonrpc.survives-bad-lines)",
            ))
        };
        self.results
            .record(JsonrpcInvalidRequest, verdict, Some(started_invalid));

        let started_batch = Instant::now();
        let verdict = if alive(s, &lines) {
            self.batch(s, &mut lines).await
        } else {
            Err(skip(
                "not run: the plugin did not survive the earlier bad lines (see jsonrpc.survives-bad-lines)",
            ))
        };
        self.results
            .record(JsonrpcBatchRejected, verdict, Some(started_batch));

        let verdict = ensure(lines.storms.is_empty(), || {
            format!("{}; answer a bad line once", lines.storms.join("; "))
        })
        .map(|()| "each bad line got at most one answer".to_owned());
        self.results
            .record(JsonrpcNoErrorStorm, verdict, Some(started));

        let survived = alive(s, &lines);
        let verdict = ensure(survived, || {
            let why = lines
                .fatal
                .clone()
                .unwrap_or_else(|| "the plugin stopped".to_owned());
            format!("{why}; one bad line must never end the conversation (§2.3)")
        })
        .map(|()| "still answering after nine bad lines".to_owned());
        self.results
            .record(JsonrpcSurvivesBadLines, verdict, Some(started));
    }

    /// -32700: not JSON, not UTF-8.
    async fn parse_errors(&self, s: &mut Session, lines: &mut BadLines) -> Verdict {
        let cases: [(&str, &[u8]); 2] = [
            ("a line that is not JSON", b"this is not JSON {"),
            (
                "a line that is not UTF-8",
                b"{\"jsonrpc\":\"2.0\",\"id\":\"conformance-\xff\xfe\",\"method\":\"ping\"}",
            ),
        ];
        let mut problems = Vec::new();
        for (what, line) in cases {
            let answers = match self.bad_line(s, line).await {
                Ok(answers) => answers,
                Err(why) => {
                    problems.push(format!("after {what}: {why}"));
                    lines.fatal.get_or_insert(format!("{what}: {why}"));
                    break;
                }
            };
            lines.count_storm(what, &answers);
            match answers.first() {
                Some(r) if r.id.is_none() && error_of(r) == Some(ErrorCode::ParseError) => {}
                Some(r) => problems.push(format!(
                    "{what} was answered with {}; expected error -32700 with id null",
                    show_response(r)
                )),
                None => problems.push(format!(
                    "{what} got no answer; expected error -32700 with id null"
                )),
            }
        }
        ensure(problems.is_empty(), || problems.join("; "))?;
        Ok(
            "a non-JSON line and a non-UTF-8 line were each answered -32700 with id null"
                .to_owned(),
        )
    }

    /// -32600: JSON, but not a message.
    async fn invalid_requests(&self, s: &mut Session, lines: &mut BadLines) -> Verdict {
        let cases: [(&str, &str, Option<&str>); 6] = [
            (
                "`jsonrpc` \"1.0\"",
                r#"{"jsonrpc":"1.0","id":"conformance-ir-1","method":"ping"}"#,
                Some("conformance-ir-1"),
            ),
            (
                "no `jsonrpc`",
                r#"{"id":"conformance-ir-2","method":"ping"}"#,
                Some("conformance-ir-2"),
            ),
            (
                "a `method` that is a number",
                r#"{"jsonrpc":"2.0","id":"conformance-ir-3","method":5}"#,
                Some("conformance-ir-3"),
            ),
            (
                "id null on a request",
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                None,
            ),
            (
                "an id that is an object",
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
                None,
            ),
            ("a JSON string", r#""just a string""#, None),
        ];
        let mut problems = Vec::new();
        for (what, line, id) in cases {
            let expected_id = id.map(RequestId::from);
            let answers = match self.bad_line(s, line.as_bytes()).await {
                Ok(answers) => answers,
                Err(why) => {
                    problems.push(format!("after a message with {what}: {why}"));
                    lines
                        .fatal
                        .get_or_insert(format!("a message with {what}: {why}"));
                    break;
                }
            };
            lines.count_storm(&format!("a message with {what}"), &answers);
            let shown = expected_id
                .as_ref()
                .map_or_else(|| "null".to_owned(), ToString::to_string);
            match answers.first() {
                Some(r)
                    if r.id == expected_id && error_of(r) == Some(ErrorCode::InvalidRequest) => {}
                Some(r) => problems.push(format!(
                    "a message with {what} ({line}) was answered with {}; expected error -32600 with id {shown}",
                    show_response(r)
                )),
                None => problems.push(format!(
                    "a message with {what} ({line}) got no answer; expected error -32600 with id {shown}"
                )),
            }
        }
        ensure(problems.is_empty(), || problems.join("; "))?;
        Ok("six kinds of invalid message were each answered -32600 with the right id".to_owned())
    }

    async fn batch(&self, s: &mut Session, lines: &mut BadLines) -> Verdict {
        let line = br#"[{"jsonrpc":"2.0","id":"conformance-batch-1","method":"ping"},{"jsonrpc":"2.0","id":"conformance-batch-2","method":"ping"}]"#;
        let answers = self.bad_line(s, line).await.map_err(|why| {
            lines.fatal.get_or_insert(format!("a batch: {why}"));
            fail(format!("after a batch: {why}"))
        })?;
        let executed = answers.iter().any(|r| {
            r.id.as_ref()
                .is_some_and(|id| id.to_string().contains("conformance-batch"))
        });
        let rejections = answers
            .iter()
            .filter(|r| r.id.is_none() && error_of(r) == Some(ErrorCode::InvalidRequest))
            .count();
        ensure(!executed && rejections == 1 && answers.len() == 1, || {
            let shown: Vec<String> = answers.iter().map(show_response).collect();
            let what = if executed {
                "executed the batch"
            } else {
                "did not answer it with exactly one -32600"
            };
            format!(
                "a batch of two pings: the plugin {what}; it sent {}. Batches are not part of this protocol: answer an array with one -32600, id null",
                if shown.is_empty() {
                    "nothing".to_owned()
                } else {
                    shown.join(", ")
                }
            )
        })?;
        Ok("a batch of two pings was answered with one -32600, id null".to_owned())
    }

    pub(super) async fn oversized_line(&self, s: &mut Session) -> Verdict {
        let limit = self.options.max_message_bytes;
        let id = "conformance-oversized";
        let line = padded_ping(id, limit + 4096);
        let size = line.len();
        s.expect_answer(RequestId::from(id), "ping");
        let mark = s.mark();
        s.send_line(&line)
            .await
            .or_explain(s, "the line to be written")?;
        s.barrier(self.timeout()).await.or_explain(
            s,
            &format!("the answer to a `ping` after a {size}-byte line"),
        )?;
        let processed = s.wait(&RequestId::from(id), Duration::ZERO).await.is_ok();
        ensure(!processed, || {
            format!(
                "a {size}-byte `ping`, over the announced {limit}-byte limit, was processed; answer such a line -32006 (id null) and discard it without buffering it whole"
            )
        })?;
        let refusal = s.events_since(mark).iter().find_map(|e| match &e.kind {
            EventKind::Unsolicited(r) if r.id.is_none() => r.outcome.clone().err(),
            _ => None,
        });
        match refusal {
            Some(e) if e.code == ErrorCode::MessageTooLarge => Ok(format!(
                "a {size}-byte line (limit {limit}) was answered -32006 and discarded"
            )),
            Some(e) => Err(fail(format!(
                "a {size}-byte line was answered with {}; expected -32006",
                show_error(&e)
            ))),
            None => Err(fail(format!(
                "a {size}-byte line (limit {limit}) got no answer; expected -32006 with id null"
            ))),
        }
    }

    /// With the slow call in flight, a `ping` with its id: refused with -32600, id null
    /// and `data.id`, and the slow call is still answered.
    pub(super) async fn reused_id(&self, s: &mut Session, slow: &SlowRun) -> Verdict {
        let id = RequestId::from(REUSED_ID);
        let sent = Instant::now();
        s.request_with_id(id.clone(), slow.method, slow.params.clone())
            .await
            .or_explain(s, "the slow call to be written")?;
        let _ = s.settle(Duration::from_millis(100)).await;
        let mark = s.mark();
        let reuse = json!({"jsonrpc": "2.0", "id": REUSED_ID, "method": "ping", "params": {}});
        s.send_line(reuse.to_string().as_bytes())
            .await
            .or_explain(s, "the request with the reused id to be written")?;
        // The slow call cannot end before `took`: what comes with its id earlier answers
        // the reused request.
        let window =
            (slow.took.mul_f64(0.8).saturating_sub(sent.elapsed())).min(Duration::from_secs(2));
        let refused = |e: &crate::session::Event| matches!(&e.kind, EventKind::Unsolicited(r) if r.id.is_none());
        let early = s.watch(&id, mark, window, refused).await;
        let verdict = match early {
            Ok(None) => judge_refusal(s, mark, &id),
            Ok(Some(answer)) => Err(fail(format!(
                "with request {id} in flight, a `ping` reusing its id was answered with {} under that id; answer it -32600 with id null and data {{\"id\": {id}}}, or the host takes the answer for the first request's",
                show_outcome(&answer.outcome)
            ))),
            Err(Stall::Timeout(_)) => Err(fail(format!(
                "with request {id} in flight, a `ping` reusing its id got no answer within {} ms; expected -32600 with id null and data {{\"id\": {id}}}",
                window.as_millis()
            ))),
            Err(stall) => Err(fail(
                s.explain(&stall, "the answer to a `ping` reusing an id in flight"),
            )),
        };
        // The first request is still served: cancel it and take its answer.
        let _ = s.notify("$/cancel", json!({"id": REUSED_ID})).await;
        let mark = s.mark();
        let first = if s.arrivals().contains(&id) {
            s.wait_event(
                mark,
                self.timeout(),
                |e| matches!(&e.kind, EventKind::Duplicate(r) if r.id.as_ref() == Some(&id)),
            )
            .await
        } else {
            s.wait(&id, self.timeout()).await.map(|_| ())
        };
        let details = verdict?;
        first.or_explain(
            s,
            &format!("the answer to the first request {id}, cancelled after the reuse"),
        )?;
        Ok(details)
    }
}

/// Whether the refusal since `mark` is -32600, id null, `data.id` the reused id.
fn judge_refusal(s: &Session, mark: usize, id: &RequestId) -> Verdict {
    let refusal = s
        .events_since(mark)
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Unsolicited(r) if r.id.is_none() => Some(r.clone()),
            _ => None,
        })
        .expect("waited for it");
    let data_id = refusal
        .outcome
        .as_ref()
        .err()
        .and_then(|e| e.data.as_ref())
        .and_then(|d| d.get("id"))
        .and_then(RequestId::from_value);
    ensure(
        error_of(&refusal) == Some(ErrorCode::InvalidRequest) && data_id.as_ref() == Some(id),
        || {
            format!(
                "with request {id} in flight, a `ping` reusing its id was answered with {}; expected -32600 with id null and data {{\"id\": {id}}}",
                show_response(&refusal)
            )
        },
    )?;
    Ok(format!(
        "a `ping` reusing the id {id} of the slow call in flight was answered -32600, id null, data.id {id}; the slow call was still answered"
    ))
}

/// What `-32602`'s `data` may be: absent, or `{errors: [{path, message}]}` with JSON
/// Pointer paths.
fn invalid_params_data(error: &ErrorObject) -> Result<(), String> {
    let Some(data) = &error.data else {
        return Ok(());
    };
    let Some(errors) = data.get("errors") else {
        return Ok(());
    };
    let Some(errors) = errors.as_array() else {
        return Err(format!("`data.errors` is {errors}, not an array"));
    };
    for entry in errors {
        let path = entry.get("path").and_then(Value::as_str);
        let message = entry.get("message").and_then(Value::as_str);
        match (path, message) {
            (Some(path), Some(_)) if is_json_pointer(path) => {}
            (Some(path), Some(_)) => {
                return Err(format!(
                    "`data.errors[].path` is {path:?}, not a JSON Pointer (RFC 6901: \"\" or \"/member/0\")"
                ));
            }
            _ => {
                return Err(format!(
                    "`data.errors` holds {entry}; each entry is {{\"path\": <a JSON Pointer>, \"message\": <text>}}"
                ));
            }
        }
    }
    Ok(())
}

/// RFC 6901: empty, or `/`-separated tokens where `~` is only `~0` or `~1`.
fn is_json_pointer(path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// A ping padded to `size` bytes on the wire.
pub(super) fn padded_ping(id: &str, size: usize) -> Vec<u8> {
    let base = json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"padding": ""}})
        .to_string();
    let pad = size.saturating_sub(base.len());
    json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"padding": "x".repeat(pad)}})
        .to_string()
        .into_bytes()
}

/// What the bad lines did, across the three kinds.
#[derive(Default)]
struct BadLines {
    storms: Vec<String>,
    /// The first bad line after which the plugin stopped answering.
    fatal: Option<String>,
}

impl BadLines {
    fn count_storm(&mut self, what: &str, answers: &[Response]) {
        if answers.len() > 1 {
            self.storms
                .push(format!("{what} got {} answers", answers.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_are_recognised() {
        for good in ["", "/", "/text", "/a~1b/0", "/m~0n"] {
            assert!(is_json_pointer(good), "{good}");
        }
        for bad in ["text", ".text", "/a~2", "/a~", "arguments.text"] {
            assert!(!is_json_pointer(bad), "{bad}");
        }
        let error = |data: Value| ErrorObject::new(ErrorCode::InvalidParams, "m").with_data(data);
        assert!(
            invalid_params_data(&error(
                json!({"errors": [{"path": "/text", "message": "m"}]})
            ))
            .is_ok()
        );
        assert!(invalid_params_data(&error(json!({"kind": "tool"}))).is_ok());
        assert!(
            invalid_params_data(&error(
                json!({"errors": [{"path": "text", "message": "m"}]})
            ))
            .is_err()
        );
        assert!(invalid_params_data(&error(json!({"errors": "text"}))).is_err());
    }
}
