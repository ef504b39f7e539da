//! The `calls` family: what the registrations answer when the host calls them, the
//! utilities every plugin supports (`ping`, `$/cancel`, lines near the limit, non-ASCII
//! text), and, with a slow call, concurrency and cancellation.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use outpost_protocol::{
    ErrorCode, ErrorObject, HOOK_EVENTS, Registration, RegistrationKind, RequestId,
};
use serde_json::{Value, json};

use super::Runner;
use super::jsonrpc::padded_ping;
use super::show::{show_error, show_outcome, show_response};
use crate::args::arguments_for;
use crate::checks::CheckId::{
    self, CallsCancel, CallsCommands, CallsConcurrency, CallsGatewayMethods, CallsHooks,
    CallsHttpRoutes, CallsOperations, CallsServices, CallsSlowCall, CallsTools, JsonrpcReusedId,
};
use crate::schemas::result_errors;
use crate::session::{Answer, EventKind, Session, Stall, seconds};
use crate::verdict::{Explain, NotPassed, Verdict, ensure, fail};

/// An operation no provider, channel or context engine has.
const NO_SUCH_OPERATION: &str = "conformanceNoSuchOperation";
/// The slow call of a plugin with the fixture capability and no `--slow-call`.
const FIXTURE_SLOW_MS: u64 = 2000;
/// A slow call quicker than this cannot show whether calls overlap or cancel.
const MIN_SLOW: Duration = Duration::from_secs(1);

/// One call made against a registration.
#[derive(Clone, Debug)]
pub(super) struct Probe {
    pub(super) what: String,
    pub(super) method: &'static str,
    pub(super) params: Value,
    expect: Expect,
    note: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A result valid for the method, or a well-formed error that does not deny the
    /// registration exists.
    Answer,
    /// This error code.
    Code(ErrorCode),
}

/// A call to a name the plugin never registered.
struct UnknownProbe {
    kind: RegistrationKind,
    method: &'static str,
    name: String,
    params: Value,
}

/// The slow call, and how long it takes when nobody cancels it.
#[derive(Clone, Debug)]
pub(super) struct SlowRun {
    pub(super) method: &'static str,
    pub(super) params: Value,
    pub(super) label: String,
    pub(super) took: Duration,
}

impl Runner<'_> {
    pub(super) async fn ping(&self, s: &mut Session) -> Verdict {
        let started = Instant::now();
        let answer = s
            .call("ping", json!({}), self.timeout())
            .await
            .or_explain(s, "the answer to `ping`")?;
        ensure(answer.outcome.as_ref().is_ok_and(Value::is_object), || {
            format!(
                "`ping` was answered with {}; expected the result {{}}",
                show_outcome(&answer.outcome)
            )
        })?;
        Ok(format!("answered in {}", seconds(started.elapsed())))
    }

    pub(super) async fn non_ascii(&self, s: &mut Session) -> Verdict {
        let id = RequestId::from("conformance-ünïcødé-日本語-🎉");
        let mark = s.mark();
        s.request_with_id(
            id.clone(),
            "ping",
            json!({"note": "ünïcødé ✓ 日本語 🎉 \u{2028}"}),
        )
        .await
        .or_explain(s, "the ping to be written")?;
        let barrier = s.barrier(self.timeout()).await;
        if s.wait(&id, Duration::ZERO).await.is_ok() {
            return Ok(format!("the id {id} came back intact"));
        }
        let mangled: Vec<String> = s
            .events_since(mark)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Unsolicited(r) => r.id.as_ref().map(ToString::to_string),
                _ => None,
            })
            .collect();
        Err(fail(match (mangled.is_empty(), barrier) {
            (false, _) => format!(
                "the ping with id {id} was answered with id {}: the text did not survive as UTF-8 (read and write the pipes as UTF-8 bytes)",
                mangled.join(", ")
            ),
            (true, Err(stall)) => {
                s.explain(&stall, &format!("the answer to a `ping` with id {id}"))
            }
            (true, Ok(())) => {
                format!("a `ping` with id {id} got no answer, though a later `ping` did")
            }
        }))
    }

    /// The calls that check the registrations of one kind.
    pub(super) fn probes(&self, check: CheckId) -> Vec<Probe> {
        let context = self.context();
        let probe = |what: String, method: &'static str, params: Value| Probe {
            what,
            method,
            params,
            expect: Expect::Answer,
            note: None,
        };
        let mut probes = Vec::new();
        for registration in &self.accepted {
            match (check, registration) {
                (CallsTools, Registration::Tool(t)) => {
                    let (arguments, valid) = arguments_for(&t.input_schema);
                    let note = (!valid).then(|| {
                        format!("the suite could not make arguments that satisfy `{}`'s inputSchema and sent {arguments}", t.name)
                    });
                    probes.push(Probe {
                        note,
                        ..probe(
                            format!("tool `{}`", t.name),
                            "tool/invoke",
                            json!({"name": t.name, "arguments": arguments, "context": context}),
                        )
                    });
                }
                (CallsHooks, Registration::Hook(h)) => {
                    // A handler with an id is named by it (several for one event, §6.2).
                    let mut params = json!({"event": h.event, "payload": {}, "context": context});
                    if let Some(id) = &h.id {
                        params["id"] = json!(id);
                    }
                    probes.push(probe(format!("hook `{}`", registration.key()), "hook/run", params));
                }
                (CallsCommands, Registration::Command(c)) => {
                    // Without arguments: no `args` member at all (§6.3).
                    let name = c.name.trim().to_lowercase();
                    let params = json!({
                        "name": name,
                        "commandBody": format!("/{name}"),
                        "context": {
                            "channel": "conformance", "senderId": "conformance",
                            "isAuthorizedSender": true, "timeoutMs": context["timeoutMs"],
                        },
                    });
                    probes.push(probe(
                        format!("command `/{name}`"),
                        "command/run",
                        params,
                    ));
                }
                (CallsGatewayMethods, Registration::GatewayMethod(m)) => probes.push(probe(
                    format!("gateway method `{}`", m.method),
                    "method/call",
                    json!({"method": m.method, "params": {}, "context": context}),
                )),
                (CallsHttpRoutes, Registration::HttpRoute(route)) => probes.push(probe(
                    format!("route `{}`", route.path),
                    "http/handle",
                    json!({
                        "route": route.path,
                        "request": {"method": "GET", "path": route.path, "headers": {"user-agent": "outpost-conformance"}},
                        "context": context,
                    }),
                )),
                (CallsServices, Registration::Service(svc)) => {
                    for (method, what) in [("service/start", "start"), ("service/stop", "stop")] {
                        probes.push(probe(
                            format!("service `{}` ({what})", svc.id),
                            method,
                            json!({"id": svc.id}),
                        ));
                    }
                }
                (CallsOperations, registration) => {
                    let (what, method, params) = match registration {
                        Registration::Provider(p) => (
                            format!("provider `{}:{}`", p.capability, p.id),
                            "provider/call",
                            json!({"capability": p.capability, "id": p.id, "operation": NO_SUCH_OPERATION, "params": {}, "context": context}),
                        ),
                        Registration::Channel(c) => (
                            format!("channel `{}`", c.id),
                            "channel/call",
                            json!({"id": c.id, "operation": NO_SUCH_OPERATION, "params": {}, "context": context}),
                        ),
                        Registration::ContextEngine(e) => (
                            format!("context engine `{}`", e.id),
                            "contextEngine/call",
                            json!({"id": e.id, "operation": NO_SUCH_OPERATION, "params": {}, "context": context}),
                        ),
                        _ => continue,
                    };
                    probes.push(Probe {
                        expect: Expect::Code(ErrorCode::MethodNotFound),
                        ..probe(what, method, params)
                    });
                }
                _ => {}
            }
        }
        probes
    }

    /// One of the `calls.*` checks of registered names: each registration of its kind
    /// called once.
    pub(super) async fn registration_calls(&self, s: &mut Session, check: CheckId) -> Verdict {
        let probes = self.probes(check);
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        for probe in &probes {
            if let Some(note) = &probe.note {
                notes.push(note.clone());
            }
            let answer = match s
                .call(probe.method, probe.params.clone(), self.timeout())
                .await
            {
                Ok(answer) => answer,
                Err(stall) => {
                    problems.push(s.explain(
                        &stall,
                        &format!("the answer to `{}` for {}", probe.method, probe.what),
                    ));
                    if !s.usable() {
                        break;
                    }
                    continue;
                }
            };
            match judge(probe, &answer.outcome) {
                Ok(summary) => notes.push(format!("{}: {summary}", probe.what)),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(notes.join("; "))
        } else {
            problems.extend(notes);
            Err(fail(problems.join("; ")))
        }
    }

    /// A call to an unregistered name for every kind of registration.
    fn unknown_probes(&self) -> Vec<UnknownProbe> {
        let context = self.context();
        let mut probes = Vec::new();
        let mut add = |kind, method, name: String, params: Value| {
            probes.push(UnknownProbe {
                kind,
                method,
                name,
                params,
            });
        };
        let name = "conformance_no_such_tool".to_owned();
        add(
            RegistrationKind::Tool,
            "tool/invoke",
            name.clone(),
            json!({"name": name, "arguments": {}, "context": context}),
        );
        let name = "conformance-no-such-command".to_owned();
        add(
            RegistrationKind::Command,
            "command/run",
            name.clone(),
            json!({"name": name, "commandBody": format!("/{name}"), "context": context}),
        );
        let name = format!("{}.conformanceNoSuchMethod", self.plugin_id);
        add(
            RegistrationKind::GatewayMethod,
            "method/call",
            name.clone(),
            json!({"method": name, "params": {}, "context": context}),
        );
        let registered: HashSet<String> = self
            .accepted(RegistrationKind::Hook)
            .map(Registration::key)
            .collect();
        if let Some(event) = HOOK_EVENTS.iter().find(|e| !registered.contains(**e)) {
            add(
                RegistrationKind::Hook,
                "hook/run",
                (*event).to_owned(),
                json!({"event": event, "payload": {}, "context": context}),
            );
        }
        let name = "conformance-no-such-service".to_owned();
        add(
            RegistrationKind::Service,
            "service/start",
            name.clone(),
            json!({"id": name}),
        );
        let name = "/conformance/no-such-route".to_owned();
        add(
            RegistrationKind::HttpRoute,
            "http/handle",
            name.clone(),
            json!({"route": name, "request": {"method": "GET", "path": name, "headers": {}}, "context": context}),
        );
        let (capability, id) = ("webSearch", "conformance-no-such-provider");
        add(
            RegistrationKind::Provider,
            "provider/call",
            format!("{capability}:{id}"),
            json!({"capability": capability, "id": id, "operation": NO_SUCH_OPERATION, "params": {}, "context": context}),
        );
        let name = "conformance-no-such-channel".to_owned();
        add(
            RegistrationKind::Channel,
            "channel/call",
            name.clone(),
            json!({"id": name, "operation": NO_SUCH_OPERATION, "params": {}, "context": context}),
        );
        let name = "conformance-no-such-engine".to_owned();
        add(
            RegistrationKind::ContextEngine,
            "contextEngine/call",
            name.clone(),
            json!({"id": name, "operation": NO_SUCH_OPERATION, "params": {}, "context": context}),
        );
        probes
    }

    /// Unregistered names of every kind: -32008 with `data.kind` and `data.name`; a
    /// plugin that implements no method for a kind it registers nothing of may answer
    /// -32601 instead.
    pub(super) async fn unknown_name(&self, s: &mut Session) -> Verdict {
        let registered: BTreeSet<RegistrationKind> =
            self.accepted.iter().map(Registration::kind).collect();
        let mut problems = Vec::new();
        let mut found = Vec::new();
        let mut unknown_methods = Vec::new();
        for probe in self.unknown_probes() {
            let UnknownProbe {
                kind,
                method,
                name,
                params,
            } = probe;
            let answer = match s.call(method, params, self.timeout()).await {
                Ok(answer) => answer,
                Err(stall) => {
                    problems
                        .push(s.explain(&stall, &format!("the answer to `{method}` for `{name}`")));
                    if !s.usable() {
                        break;
                    }
                    continue;
                }
            };
            let expected = json!({"kind": kind, "name": name});
            match answer.outcome {
                Err(e) if e.code == ErrorCode::NotFound => {
                    let data = e.data.as_ref();
                    let fits = data.and_then(|d| d.get("kind")) == Some(&expected["kind"])
                        && data.and_then(|d| d.get("name")) == Some(&expected["name"]);
                    if fits {
                        found.push(format!("`{method}` for `{name}`"));
                    } else {
                        problems.push(format!(
                            "`{method}` for `{name}` was answered -32008 with data {}; expected {expected}",
                            data.map_or_else(|| "missing".to_owned(), Value::to_string),
                        ));
                    }
                }
                Err(e) if e.code == ErrorCode::MethodNotFound && !registered.contains(&kind) => {
                    unknown_methods.push(format!("`{method}`"));
                }
                other => {
                    let allowed = if registered.contains(&kind) {
                        format!("the plugin registers {kind}s, so it answers -32008 (not found)")
                    } else {
                        "-32008 (not found), or -32601 from a plugin that does not implement the method".to_owned()
                    };
                    problems.push(format!(
                        "`{method}` for the unregistered {kind} `{name}` was answered with {}; expected {allowed} with data {expected}",
                        show_outcome(&other)
                    ));
                }
            }
        }
        ensure(problems.is_empty(), || problems.join("; "))?;
        let mut details = format!("answered -32008 with kind and name: {}", found.join(", "));
        if !unknown_methods.is_empty() {
            let _ = write!(
                details,
                "; answered -32601 (methods of kinds it registers nothing of): {}",
                unknown_methods.join(", ")
            );
        }
        Ok(details)
    }

    pub(super) async fn cancel_answered(&self, s: &mut Session) -> Verdict {
        let (method, params) = match self.accepted(RegistrationKind::Tool).next() {
            Some(Registration::Tool(tool)) => (
                "tool/invoke",
                json!({"name": tool.name, "arguments": arguments_for(&tool.input_schema).0, "context": self.context()}),
            ),
            _ => ("ping", json!({})),
        };
        let id = s
            .request(method, params)
            .await
            .or_explain(s, "the request to be written")?;
        let mark = s.mark();
        let _ = s.notify("$/cancel", json!({"id": id})).await;
        let answer = s
            .wait(&id, self.timeout())
            .await
            .or_explain(s, &format!("the answer to the cancelled `{method}`"))
            .map_err(|e| {
                e.amend(|details| {
                    format!("{details}; a cancelled request must still be answered (its result, or -32800)")
                })
            })?;
        let _ = s.barrier(self.timeout()).await;
        let duplicates = s
            .events_since(mark)
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Duplicate(r) if r.id.as_ref() == Some(&id)))
            .count();
        ensure(duplicates == 0, || {
            format!(
                "the cancelled `{method}` was answered {} times",
                duplicates + 1
            )
        })?;
        Ok(format!(
            "`{method}` cancelled at once was answered once, with {}",
            show_outcome(&answer.outcome)
        ))
    }

    pub(super) async fn large_message(&self, s: &mut Session) -> Verdict {
        let limit = self.options.max_message_bytes;
        let id = "conformance-large";
        let line = padded_ping(id, limit - 256);
        let size = line.len();
        let short_reader = "the plugin's line reader has a lower limit (64 KiB is common, e.g. Go's bufio.Scanner); size it from limits.maxMessageBytes";
        s.expect_answer(RequestId::from(id), "ping");
        let mark = s.mark();
        s.send_line(&line)
            .await
            .or_explain(s, "the line to be written")?;
        let answer = s
            .wait_or(
                &RequestId::from(id),
                mark,
                self.timeout(),
                |e| matches!(&e.kind, EventKind::Unsolicited(r) if r.id.is_none()),
            )
            .await;
        match answer {
            Ok(Some(Answer { outcome: Ok(_), .. })) => {
                Ok(format!("a {size}-byte `ping` was answered (limit {limit})"))
            }
            Ok(Some(Answer {
                outcome: Err(e), ..
            })) => Err(fail(format!(
                "a {size}-byte `ping` (under the announced {limit}-byte limit) was answered with {}: {short_reader}",
                show_error(&e)
            ))),
            Ok(None) | Err(_) => {
                let refused = s.events_since(mark).iter().find_map(|e| match &e.kind {
                    EventKind::Unsolicited(r) if r.id.is_none() => Some(show_response(r)),
                    _ => None,
                });
                Err(fail(match (refused, answer) {
                    (Some(refusal), _) => format!(
                        "a {size}-byte `ping` (under the announced {limit}-byte limit) was refused with {refusal}: {short_reader}"
                    ),
                    (None, Err(stall)) => s.explain(
                        &stall,
                        &format!("the answer to a {size}-byte `ping` (limit {limit})"),
                    ),
                    (None, Ok(_)) => unreachable!("a refusal ended the wait"),
                }))
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // The slow call

    /// The slow call's method, params and label, or why there is none.
    pub(super) fn slow_call(&self) -> Result<(&'static str, Value, String), String> {
        if let Some(call) = &self.options.slow_call {
            let accepted = self
                .accepted(call.kind)
                .any(|registration| call.names(&registration.key()));
            if !accepted {
                return Err(format!(
                    "--slow-call names the {} `{}`, which is not among the plugin's accepted registrations",
                    call.kind, call.name
                ));
            }
            let (method, params) = call.request(&self.context());
            return Ok((method, params, format!("`{call}`")));
        }
        if self.fixture {
            return Ok((
                "fixture/sleep",
                json!({"ms": FIXTURE_SLOW_MS}),
                format!("`fixture/sleep {{\"ms\":{FIXTURE_SLOW_MS}}}` (the fixture capability)"),
            ));
        }
        Err("no slow call. Pass --slow-call 'KIND NAME JSON_ARGS' naming a call that takes a second or more and changes nothing, e.g. --slow-call 'tool slow {\"ms\":3000}'".to_owned())
    }

    /// `calls.slow-call`, `calls.concurrency`, `jsonrpc.reused-id` and `calls.cancel`:
    /// the slow call once to the end with a ping and a second call sent meanwhile, once
    /// with its id reused, and once cancelled.
    pub(super) async fn slow_call_checks(&mut self, s: &mut Session) {
        let started = Instant::now();
        let Ok((method, params, label)) = self.slow_call() else {
            return;
        };
        let (measured, verdict, concurrency_started) =
            match self.concurrency(s, method, &params, &label).await {
                Ok(measured) => measured,
                Err(not_passed) => {
                    self.results
                        .record(CallsConcurrency, Err(not_passed), Some(started));
                    self.results.skip_all(
                        &[CallsSlowCall, CallsCancel, JsonrpcReusedId],
                        "not judged: the slow call did not run (see calls.concurrency)",
                    );
                    return;
                }
            };
        let run = measured.slow;
        if run.took < MIN_SLOW {
            self.results.record(
                CallsSlowCall,
                Err(fail(format!(
                    "concurrency and cancellation were not verified: the slow call {label} answered in {}, too quick to show whether calls overlap or cancel; give it arguments that make it take 1 to 3 s",
                    seconds(run.took)
                ))),
                Some(started),
            );
            self.results.skip_all(
                &[CallsConcurrency, CallsCancel, JsonrpcReusedId],
                "not judged: the slow call is too quick (see calls.slow-call)",
            );
            return;
        }
        self.results.pass(
            CallsSlowCall,
            format!("verified with {label}, which takes {}", seconds(run.took)),
            started,
        );
        self.results
            .record(CallsConcurrency, verdict, Some(concurrency_started));
        if measured.blocked_reader {
            self.results.skip_all(
                &[CallsCancel, JsonrpcReusedId],
                "not judged: the plugin did not read while the slow call ran (see calls.concurrency)",
            );
            return;
        }
        if self.results.wants(JsonrpcReusedId) {
            let started = Instant::now();
            let verdict = self.reused_id(s, &run).await;
            self.results.record(JsonrpcReusedId, verdict, Some(started));
        }
        if self.results.wants(CallsCancel) && s.usable() {
            let started = Instant::now();
            let verdict = self.slow_cancel(s, &run).await;
            self.results.record(CallsCancel, verdict, Some(started));
        }
    }

    /// The second call of `calls.concurrency`: a call of the slow call's kind to a name
    /// nobody registered. It changes nothing, so it cannot end the slow call early, and
    /// the plugin must still look it up while the slow call runs.
    fn second_call(&self) -> (String, &'static str, Value) {
        let kind = self.options.slow_call.as_ref().map(|c| c.kind);
        let unknown = self.unknown_probes();
        let probe = unknown
            .iter()
            .find(|p| Some(p.kind) == kind)
            .unwrap_or(&unknown[0]);
        (
            format!("`{}` for the unregistered `{}`", probe.method, probe.name),
            probe.method,
            probe.params.clone(),
        )
    }

    /// The slow call to the end, with a ping and a second call sent while it runs.
    async fn concurrency(
        &self,
        s: &mut Session,
        method: &'static str,
        params: &Value,
        label: &str,
    ) -> Result<(Measured, Verdict, Instant), NotPassed> {
        let started = Instant::now();
        let slow = s
            .request(method, params.clone())
            .await
            .or_explain(s, "the slow call to be written")?;
        let _ = s.settle(Duration::from_millis(50)).await;
        let (second, second_method, second_params) = self.second_call();
        let ping = s
            .request("ping", json!({}))
            .await
            .or_explain(s, "a `ping` to be written")?;
        let other = s
            .request(second_method, second_params)
            .await
            .or_explain(s, "a second call to be written")?;
        let ping_answer = s.wait(&ping, self.timeout()).await;
        let other_answer = s.wait(&other, self.timeout()).await;
        // A slow call that outlasts a step is not a stuck plugin: no poisoning wait.
        let mark = s.mark();
        let slow_answer = s
            .watch(&slow, mark, self.timeout(), |_| false)
            .await
            .map(|answer| answer.expect("nothing but the answer ends the wait"));
        let took = match &slow_answer {
            Ok(answer) => answer.at.saturating_duration_since(started),
            Err(Stall::Timeout(_)) => {
                // Longer than a step: it counts as running all along; stop it.
                let _ = s.notify("$/cancel", json!({"id": slow})).await;
                let _ = s.wait(&slow, self.timeout()).await;
                started.elapsed()
            }
            Err(stall) => {
                return Err(fail(
                    s.explain(stall, &format!("the answer to the slow call {label}")),
                ));
            }
        };
        let slow_at = slow_answer
            .as_ref()
            .map_or_else(|_| Instant::now(), |a| a.at);
        let ping_at = ping_answer.as_ref().ok().map(|a| a.at);
        let other_at = other_answer.as_ref().ok().map(|a| a.at);
        let blocked_reader = ping_at.is_none_or(|at| at > slow_at);
        let mut problems = Vec::new();
        match &ping_answer {
            Err(stall) => problems.push(s.explain(stall, "the answer to a `ping` sent while the slow call ran")),
            Ok(_) if blocked_reader => problems.push(format!(
                "a `ping` sent while the slow call {label} ran was answered only after it: the plugin does not read stdin while a call runs"
            )),
            Ok(_) => {}
        }
        match (&other_answer, other_at) {
            (Err(stall), _) => problems.push(s.explain(stall, &format!("the answer to {second}, sent while the slow call ran"))),
            (Ok(_), Some(at)) if at > slow_at => problems.push(format!(
                "{second}, sent while the slow call {label} ran, was answered only after it: calls run one at a time"
            )),
            _ => {}
        }
        let verdict = ensure(problems.is_empty(), || {
            format!(
                "{}. Read stdin continuously and run calls concurrently (§4), or pings time out and `$/cancel` comes too late",
                problems.join("; ")
            )
        })
        .map(|()| {
            format!(
                "a `ping` and {second} were answered while the slow call {label} ran ({} in all)",
                seconds(took)
            )
        });
        let measured = Measured {
            slow: SlowRun {
                method,
                params: params.clone(),
                label: label.to_owned(),
                took,
            },
            blocked_reader,
        };
        Ok((measured, verdict, started))
    }

    /// The slow call, cancelled 100 ms after it started: -32800 well before it would
    /// have finished.
    async fn slow_cancel(&self, s: &mut Session, slow: &SlowRun) -> Verdict {
        let id = s
            .request(slow.method, slow.params.clone())
            .await
            .or_explain(s, "the slow call to be written")?;
        let sent = Instant::now();
        let _ = s.settle(Duration::from_millis(100)).await;
        s.notify("$/cancel", json!({"id": id}))
            .await
            .or_explain(s, "`$/cancel` to be written")?;
        let answer = s.wait(&id, self.timeout()).await.or_explain(
            s,
            &format!("the answer to the cancelled slow call {}", slow.label),
        )?;
        let after = answer.at.saturating_duration_since(sent);
        let label = &slow.label;
        match &answer.outcome {
            Err(e) if e.code == ErrorCode::Cancelled => {
                ensure(after < slow.took / 2, || {
                    format!(
                        "the slow call {label}, cancelled 100 ms after it started, was answered -32800 only {} after it started; uncancelled it takes {}, so the work did not stop: stop it when `$/cancel` arrives",
                        seconds(after),
                        seconds(slow.took)
                    )
                })?;
                Ok(format!(
                    "the slow call {label}, cancelled 100 ms after it started, was answered -32800 {} after it started (uncancelled it takes {})",
                    seconds(after),
                    seconds(slow.took)
                ))
            }
            Ok(_) => Err(fail(format!(
                "the slow call {label}, cancelled 100 ms after it started, was answered with its result {} after it started: `$/cancel` did not stop it; stop the work and answer -32800",
                seconds(after)
            ))),
            Err(e) => Err(fail(format!(
                "the slow call {label}, cancelled 100 ms after it started, was answered with {}; expected -32800 (cancelled)",
                show_error(e)
            ))),
        }
    }
}

/// What running the slow call to the end showed.
#[derive(Debug)]
struct Measured {
    slow: SlowRun,
    /// The `ping` sent meanwhile was answered only after the slow call (or never).
    blocked_reader: bool,
}

pub(super) fn no_probes_reason(check: CheckId) -> &'static str {
    match check {
        CallsTools => "the plugin has no accepted tools",
        CallsHooks => "the plugin has no accepted hooks",
        CallsCommands => "the plugin has no accepted commands",
        CallsGatewayMethods => "the plugin has no accepted gateway methods",
        CallsHttpRoutes => "the plugin has no accepted HTTP routes",
        CallsServices => "the plugin has no accepted services",
        _ => "the plugin has no accepted providers, channels or context engines",
    }
}

/// Whether an answer to a registration call is acceptable; `Ok` carries a summary.
fn judge(probe: &Probe, outcome: &Result<Value, ErrorObject>) -> Result<String, String> {
    match (probe.expect, outcome) {
        (Expect::Code(code), Err(e)) if e.code == code => Ok(format!("answered {}", code.code())),
        (Expect::Code(code), other) => Err(format!(
            "{} was asked for an operation it cannot have and answered with {}; expected error {} ({})",
            probe.what,
            show_outcome(other),
            code.code(),
            code.name()
        )),
        (Expect::Answer, Ok(result)) => {
            let errors = result_errors(probe.method, result);
            if errors.is_empty() {
                Ok("result".to_owned())
            } else {
                Err(format!(
                    "{}: the result of `{}` does not match the schema: {}",
                    probe.what,
                    probe.method,
                    errors.join("; ")
                ))
            }
        }
        (Expect::Answer, Err(e))
            if matches!(
                e.code,
                ErrorCode::MethodNotFound | ErrorCode::NotFound | ErrorCode::NotInitialized
            ) =>
        {
            Err(format!(
                "{} is registered, but `{}` was answered with {}, as if it did not exist",
                probe.what,
                probe.method,
                show_error(e)
            ))
        }
        (Expect::Answer, Err(e)) => Ok(format!("error {}", e.code.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_calls_are_judged() {
        let probe = Probe {
            what: "tool `t`".into(),
            method: "tool/invoke",
            params: json!({}),
            expect: Expect::Answer,
            note: None,
        };
        assert!(judge(&probe, &Ok(json!({"content": []}))).is_ok());
        assert!(judge(&probe, &Ok(json!({"content": "no"}))).is_err());
        assert!(
            judge(
                &probe,
                &Err(ErrorObject::new(ErrorCode::HandlerFailed, "boom"))
            )
            .is_ok()
        );
        let denied = judge(
            &probe,
            &Err(ErrorObject::new(ErrorCode::NotFound, "no tool")),
        )
        .unwrap_err();
        assert!(denied.contains("as if it did not exist"), "{denied}");
        let op = Probe {
            expect: Expect::Code(ErrorCode::MethodNotFound),
            ..probe
        };
        assert!(judge(&op, &Err(ErrorObject::new(ErrorCode::MethodNotFound, "no"))).is_ok());
        assert!(judge(&op, &Ok(json!({}))).is_err());
    }
}
