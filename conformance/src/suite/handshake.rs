//! The `handshake` family: the main session's `initialize` and what it registers, and
//! the three short sessions around it (requests before `initialize`, version
//! negotiation, no version in common).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use outpost_protocol::methods::RejectedRegistration;
use outpost_protocol::{
    ErrorCode, HOOK_EVENTS, LEGACY_HOOKS, Registration, RegistrationKind, RejectionCode, RequestId,
    parse_registrations,
};
use serde_json::{Value, json};

use super::Runner;
use super::show::{show_error, show_outcome};
use super::shutdown::EOF_GRACE;
use crate::checks::CheckId::{
    self, HandshakeInitialize, HandshakeKnownHooks, HandshakeKnownKinds, HandshakeNotInitialized,
    HandshakePingBeforeInitialize, HandshakePluginId, HandshakeRegistrationsDeclared,
    HandshakeRegistrationsValid, HandshakeSecondInitialize, HandshakeUnknownFields,
    HandshakeUnsupportedVersion, HandshakeVersionNegotiation, HandshakeVersionOffered,
    ShutdownEofWithoutShutdown, ShutdownSigterm, StreamUnbuffered,
};
use crate::plan::{IdSource, RunError};
use crate::schemas::result_errors;
use crate::session::{Answer, Session, Stall, seconds};
use crate::verdict::{Explain, Verdict, ensure, fail, skip};

/// A version no plugin speaks.
const FUTURE_VERSION: &str = "999";

const EARLY_CHECKS: &[CheckId] = &[
    HandshakePingBeforeInitialize,
    HandshakeNotInitialized,
    HandshakeUnknownFields,
    HandshakeSecondInitialize,
    ShutdownEofWithoutShutdown,
];
const NEGOTIATION_CHECKS: &[CheckId] = &[HandshakeVersionNegotiation, ShutdownSigterm];
const UNSUPPORTED_CHECKS: &[CheckId] = &[HandshakeUnsupportedVersion];
/// The checks judged from the main session's `initialize`.
const HANDSHAKE_CHECKS: &[CheckId] = &[
    StreamUnbuffered,
    HandshakeInitialize,
    HandshakeVersionOffered,
    HandshakePluginId,
    HandshakeRegistrationsValid,
    HandshakeRegistrationsDeclared,
    HandshakeKnownHooks,
    HandshakeKnownKinds,
];

impl Runner<'_> {
    /// The handshake of the main session. False when nothing else can run.
    pub(super) async fn main_handshake(&mut self, s: &mut Session) -> bool {
        let started = Instant::now();
        let params = self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]);
        let answer = match self.initialize(s, params).await {
            Ok((_, answer)) => {
                self.results.pass(
                    StreamUnbuffered,
                    format!(
                        "`initialize` was answered after {} while stdin was open",
                        seconds(started.elapsed())
                    ),
                    started,
                );
                answer
            }
            Err(Stall::Timeout(waited)) => {
                self.handshake_timed_out(s, started, waited).await;
                return false;
            }
            Err(stall) => {
                let text = s.explain(&stall, "the answer to `initialize`");
                self.results.fail(HandshakeInitialize, text, started);
                self.results.skip(
                    StreamUnbuffered,
                    "not judged: the plugin never answered `initialize`",
                );
                self.results
                    .skip_all(HANDSHAKE_CHECKS, "not run: `initialize` was not answered");
                return false;
            }
        };
        let result = match answer.outcome {
            Ok(result) => result,
            Err(error) => {
                let hint = if error.code == ErrorCode::UnsupportedVersion {
                    ": the plugin does not speak protocol version \"1\""
                } else {
                    ""
                };
                self.results.fail(
                    HandshakeInitialize,
                    format!(
                        "`initialize` (protocolVersions [\"1\"]) was answered with {}{hint}",
                        show_error(&error)
                    ),
                    started,
                );
                self.results
                    .skip_all(HANDSHAKE_CHECKS, "not run: `initialize` failed");
                return false;
            }
        };
        self.judge_initialize_result(&result, started);
        self.handshake_done = true;
        // The plugin may send requests from the moment `initialized` is on its way: the
        // session answers them whenever it reads them (see `Session::send`).
        if s.notify("initialized", self.initialized.clone())
            .await
            .is_err()
        {
            s.poison();
        }
        true
    }

    /// `initialize` got no answer in time: tell a block-buffered stdout from a hang.
    async fn handshake_timed_out(&mut self, s: &mut Session, started: Instant, waited: Duration) {
        s.close_stdin();
        let id = RequestId::from(1);
        // A block-buffered plugin flushes when it exits at EOF.
        let late = matches!(
            s.wait_event(0, EOF_GRACE, |_| false).await,
            Err(Stall::Exited(_))
        ) || s.process().exit_status().is_some();
        let flushed = late && s.arrivals().contains(&id);
        if flushed {
            self.results.fail(
                StreamUnbuffered,
                format!(
                    "the answer to `initialize` arrived only after the suite closed the plugin's stdin ({} later): stdout is block-buffered. Flush after every message (Python: print(..., flush=True) or sys.stdout.flush(); C: setvbuf(stdout, NULL, _IOLBF, 0) or fflush)",
                    seconds(waited)
                ),
                started,
            );
            self.results
                .skip(HandshakeInitialize, "not judged: see stream.unbuffered");
        } else {
            self.results.fail(
                HandshakeInitialize,
                format!(
                    "timed out after {} waiting for the answer to `initialize`{}",
                    seconds(waited),
                    s.stderr_hint()
                ),
                started,
            );
            self.results.skip(
                StreamUnbuffered,
                "not judged: `initialize` was never answered, even after stdin was closed",
            );
        }
        self.results.skip_all(
            HANDSHAKE_CHECKS,
            "not run: `initialize` was not answered in time",
        );
    }

    fn judge_initialize_result(&mut self, result: &Value, started: Instant) {
        let plugin = result.get("plugin");
        let text = |member: &str| {
            plugin
                .and_then(|p| p.get(member))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let reported_id = text("id");
        self.name = text("name");
        self.version = text("version");
        self.fixture = result
            .get("capabilities")
            .and_then(|c| c.get("fixture"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let registrations: Vec<Value> = result
            .get("registrations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();

        let verdict = self.initialize_shape(result, reported_id.as_deref(), &registrations);
        self.results
            .record(HandshakeInitialize, verdict, Some(started));
        let verdict = version_offered(result);
        self.results
            .record(HandshakeVersionOffered, verdict, Some(started));
        let verdict = self.plugin_id_matches(reported_id);
        self.results
            .record(HandshakePluginId, verdict, Some(started));
        self.judge_registrations(&registrations, started);
    }

    fn initialize_shape(
        &self,
        result: &Value,
        reported_id: Option<&str>,
        registrations: &[Value],
    ) -> Verdict {
        // Registrations are judged one by one later; the rest must match the schema.
        let mut shape = result.clone();
        if let Some(list) = shape.get_mut("registrations")
            && list.is_array()
        {
            *list = json!([]);
        }
        let problems = result_errors("initialize", &shape);
        ensure(problems.is_empty(), || {
            format!(
                "the `initialize` result does not match the schema: {}",
                problems.join("; ")
            )
        })?;
        Ok(format!(
            "plugin `{}`, {} registrations{}",
            reported_id.unwrap_or("?"),
            registrations.len(),
            if self.fixture {
                ", fixture capability"
            } else {
                ""
            }
        ))
    }

    fn plugin_id_matches(&mut self, reported: Option<String>) -> Verdict {
        match (self.id_source, reported) {
            (IdSource::Plugin, Some(id)) => {
                let reason = format!(
                    "no manifest id to compare with: the plugin says `{id}`; pass --plugin-id or --plugin-dir to check it"
                );
                self.plugin_id = id;
                Err(skip(reason))
            }
            (IdSource::Plugin, None) => Err(skip("no manifest id, and the plugin sent none")),
            (_, Some(id)) if id == self.plugin_id => Ok(format!("`{id}`")),
            (source, reported) => {
                let whose = if source == IdSource::Manifest {
                    "the manifest id"
                } else {
                    "--plugin-id"
                };
                Err(fail(format!(
                    "plugin.id is {} but {whose} is `{}`; the host refuses such a plugin",
                    reported.map_or_else(|| "missing".to_owned(), |id| format!("`{id}`")),
                    self.plugin_id
                )))
            }
        }
    }

    /// Judges the registrations one by one, as the host does: a bad one is rejected
    /// alone. Sets what `initialized` will say, and what the calls steps call.
    fn judge_registrations(&mut self, values: &[Value], started: Instant) {
        let mut judged = Judged::default();
        let mut seen: HashSet<(RegistrationKind, String)> = HashSet::new();
        for (index, parsed) in parse_registrations(values).into_iter().enumerate() {
            match parsed {
                Ok(registration) => {
                    self.judge_registration(index, registration, &mut seen, &mut judged);
                }
                Err(rejected) => {
                    let kind = values[index].get("kind").and_then(Value::as_str);
                    match kind {
                        Some(kind) if RegistrationKind::from_name(kind).is_none() => {
                            judged.unknown_kinds.push(format!(
                                "registrations[{index}] has the kind `{kind}`, which this host does not know (known: {})",
                                RegistrationKind::ALL.map(RegistrationKind::as_str).join(", ")
                            ));
                        }
                        _ => judged
                            .invalid
                            .push(format!("registrations[{index}]: {}", rejected.reason)),
                    }
                    judged.rejected.push(rejected);
                }
            }
        }

        let total = values.len();
        let verdict = ensure(judged.invalid.is_empty(), || judged.invalid.join("; "))
            .map(|()| format!("{total} registrations, all well formed"));
        self.results
            .record(HandshakeRegistrationsValid, verdict, Some(started));

        let verdict = if self.plan.manifest.is_none() {
            Err(skip(
                "no manifest: run with --plugin-dir to check that registrations are declared",
            ))
        } else {
            ensure(judged.undeclared.is_empty(), || {
                judged.undeclared.join("; ")
            })
            .map(|()| "every tool, channel and provider is declared".to_owned())
        };
        self.results
            .record(HandshakeRegistrationsDeclared, verdict, Some(started));

        let verdict = if judged.hooks == 0 {
            Err(skip("the plugin registers no hooks"))
        } else {
            ensure(judged.unknown_hooks.is_empty(), || {
                format!(
                    "{}; §9.2 lists the events the host knows",
                    judged.unknown_hooks.join("; ")
                )
            })
            .map(|()| {
                let mut note = format!("{} hooks, all known events", judged.hooks);
                if !judged.legacy_hooks.is_empty() {
                    let _ = write!(
                        note,
                        " ({} is a legacy hook: it works, but prefer its replacement)",
                        judged.legacy_hooks.join(", ")
                    );
                }
                note
            })
        };
        self.results
            .record(HandshakeKnownHooks, verdict, Some(started));

        let verdict = ensure(judged.unknown_kinds.is_empty(), || {
            format!(
                "{}; the host rejects such a registration alone and serves the others, but a host that knows the kind may still not be this one",
                judged.unknown_kinds.join("; ")
            )
        })
        .map(|()| format!("{total} registrations of known kinds"));
        self.results
            .record(HandshakeKnownKinds, verdict, Some(started));

        let accepted_json: Vec<Value> = judged
            .accepted
            .iter()
            .map(|(index, registration)| {
                json!({"index": index, "kind": registration.kind(), "key": registration.key()})
            })
            .collect();
        judged.rejected.sort_by_key(|r| r.index);
        self.initialized = json!({"accepted": accepted_json, "rejected": judged.rejected});
        self.accepted = judged.accepted.into_iter().map(|(_, r)| r).collect();
    }

    fn judge_registration(
        &self,
        index: usize,
        registration: Registration,
        seen: &mut HashSet<(RegistrationKind, String)>,
        judged: &mut Judged,
    ) {
        let kind = registration.kind();
        let key = registration.key();
        let label = format!("registrations[{index}] ({kind} `{key}`)");
        let reject = |code: RejectionCode, reason: String| RejectedRegistration {
            index,
            kind: Some(kind),
            key: Some(key.clone()),
            code,
            reason,
        };
        if kind == RegistrationKind::Hook {
            judged.hooks += 1;
        }
        if let Err(problem) = registration.check(&self.plugin_id) {
            if problem.code == RejectionCode::UnknownHook {
                let hint = closest_hook(&key)
                    .map(|event| format!(" (did you mean `{event}`?)"))
                    .unwrap_or_default();
                judged
                    .unknown_hooks
                    .push(format!("{label}: {}{hint}", problem.reason));
            } else {
                judged.invalid.push(format!("{label}: {problem}"));
            }
            judged.rejected.push(reject(problem.code, problem.reason));
            return;
        }
        if let Registration::Tool(tool) = &registration
            && let Err(e) = jsonschema::validator_for(&tool.input_schema)
        {
            let reason = format!("`inputSchema` does not compile: {e}");
            judged.invalid.push(format!("{label}: {reason}"));
            judged.rejected.push(reject(RejectionCode::Invalid, reason));
            return;
        }
        if let Registration::Hook(hook) = &registration
            && LEGACY_HOOKS.contains(&hook.event.as_str())
        {
            judged.legacy_hooks.push(hook.event.clone());
        }
        if !seen.insert((kind, key.clone())) {
            let reason = format!("{kind} `{key}` is registered twice; the host keeps the first");
            judged.invalid.push(format!("{label}: {reason}"));
            judged
                .rejected
                .push(reject(RejectionCode::Duplicate, reason));
            return;
        }
        if let Some(manifest) = &self.plan.manifest
            && let Some((field, id)) = manifest_field(&registration)
            && !manifest.declared(field).unwrap_or_default().contains(&id)
        {
            let reason = format!(
                "{kind} `{id}` is not declared in the manifest's `{field}`; add it there (the manifest is what the operator reviewed)"
            );
            judged.undeclared.push(format!("{label}: {reason}"));
            judged
                .rejected
                .push(reject(RejectionCode::NotDeclared, reason));
            return;
        }
        judged.accepted.push((index, registration));
    }

    // ==================================================================================
    // The other sessions

    pub(super) async fn other_phases(&mut self) -> Result<(), RunError> {
        if self.results.wants_any(EARLY_CHECKS) {
            self.early_phase().await?;
        }
        if self.results.wants_any(NEGOTIATION_CHECKS) {
            self.negotiation_phase().await?;
        }
        if self.results.wants_any(UNSUPPORTED_CHECKS) {
            self.unsupported_phase().await?;
        }
        Ok(())
    }

    pub(super) fn skip_other_phases(&mut self, reason: &str) {
        for ids in [EARLY_CHECKS, NEGOTIATION_CHECKS, UNSUPPORTED_CHECKS] {
            self.results.skip_all(ids, reason);
        }
    }

    async fn early_phase(&mut self) -> Result<(), RunError> {
        let mut s = self.spawn("early")?;
        let started = Instant::now();
        let verdict = self.ping_before_initialize(&mut s).await;
        self.results
            .record(HandshakePingBeforeInitialize, verdict, Some(started));
        if !s.usable() {
            s = self.spawn("early")?;
        }
        let started = Instant::now();
        let verdict = self.not_initialized(&mut s).await;
        self.results
            .record(HandshakeNotInitialized, verdict, Some(started));
        if !s.usable() {
            s = self.spawn("early")?;
        }
        let started = Instant::now();
        let verdict = self.unknown_fields(&mut s).await;
        let initialized = s.initialized_sent();
        self.results
            .record(HandshakeUnknownFields, verdict, Some(started));

        let started = Instant::now();
        let verdict = if initialized && s.usable() {
            self.second_initialize(&mut s).await
        } else {
            Err(skip(
                "not run: the first `initialize` of this session failed (see handshake.unknown-fields)",
            ))
        };
        self.results
            .record(HandshakeSecondInitialize, verdict, Some(started));

        // EOF without `shutdown`.
        if s.usable() {
            let started = Instant::now();
            self.eof_exit(
                &mut s,
                ShutdownEofWithoutShutdown,
                "without `shutdown`",
                started,
            )
            .await;
            return Ok(());
        }
        let mut fresh = self.spawn("early/eof")?;
        let params = self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]);
        if let Ok((_, Answer { outcome: Ok(_), .. })) = self.initialize(&mut fresh, params).await {
            let _ = fresh.notify("initialized", self.initialized.clone()).await;
            let _ = fresh.barrier(self.timeout()).await;
            let started = Instant::now();
            self.eof_exit(
                &mut fresh,
                ShutdownEofWithoutShutdown,
                "without `shutdown`",
                started,
            )
            .await;
        } else {
            self.results.skip(
                ShutdownEofWithoutShutdown,
                "not run: the plugin could not be initialized again",
            );
        }
        Ok(())
    }

    async fn ping_before_initialize(&self, s: &mut Session) -> Verdict {
        let answer = s
            .call("ping", json!({}), self.timeout())
            .await
            .or_explain(s, "the answer to `ping` sent before `initialize`")?;
        ensure(answer.outcome.as_ref().is_ok_and(Value::is_object), || {
            format!(
                "`ping` before `initialize` was answered with {}; expected {{}}",
                show_outcome(&answer.outcome)
            )
        })?;
        Ok("answered {} before `initialize`".to_owned())
    }

    async fn not_initialized(&self, s: &mut Session) -> Verdict {
        let params = json!({"name": "conformance_probe", "arguments": {}, "context": {}});
        let answer = s
            .call("tool/invoke", params, self.timeout())
            .await
            .or_explain(s, "the answer to `tool/invoke` sent before `initialize`")?;
        ensure(
            matches!(&answer.outcome, Err(e) if e.code == ErrorCode::NotInitialized),
            || {
                format!(
                    "`tool/invoke` before `initialize` was answered with {}; expected error -32002 (not initialized)",
                    show_outcome(&answer.outcome)
                )
            },
        )?;
        Ok("`tool/invoke` before `initialize` was answered -32002".to_owned())
    }

    /// `initialize`, `initialized` and a `ping` with unknown members everywhere. The
    /// session counts as initialized when `initialize` succeeded.
    async fn unknown_fields(&self, s: &mut Session) -> Verdict {
        let mut params = self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]);
        params["futureMember"] = json!({"nested": [1, 2, 3]});
        params["host"]["futureMember"] = json!("x");
        params["limits"]["futureLimit"] = json!(7);
        params["capabilities"]["futureCapability"] = json!({"enabled": true});
        let id = RequestId::from("conformance-init-unknown-fields");
        let line = json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize", "params": params,
            "futureEnvelopeMember": {"a": 1},
        });
        let hint = "; unknown members must be ignored everywhere (§4)";
        s.expect_answer(id.clone(), "initialize");
        s.send_line(line.to_string().as_bytes())
            .await
            .or_explain(s, "`initialize` to be written")?;
        s.set_limit(self.options.max_message_bytes);
        let answer = s
            .wait(&id, self.options.handshake_timeout)
            .await
            .or_explain(s, "the answer to `initialize` with unknown members")
            .map_err(|e| e.amend(|details| details + hint))?;
        // Whether the result itself is well formed is handshake.initialize's concern.
        ensure(answer.outcome.is_ok(), || {
            format!(
                "`initialize` with unknown members was answered with {}{hint}",
                show_outcome(&answer.outcome)
            )
        })?;
        let mut initialized = self.initialized.clone();
        initialized["futureMember"] = json!(true);
        let line = json!({"jsonrpc": "2.0", "method": "initialized", "params": initialized, "futureEnvelopeMember": 1});
        s.set_initialized();
        s.send_line(line.to_string().as_bytes())
            .await
            .or_explain(s, "`initialized` to be written")?;
        let ping_id = RequestId::from("conformance-ping-unknown-fields");
        s.expect_answer(ping_id.clone(), "ping");
        let ping = json!({"jsonrpc": "2.0", "id": ping_id, "method": "ping", "params": {"futureMember": 1}, "futureEnvelopeMember": 2});
        s.send_line(ping.to_string().as_bytes())
            .await
            .or_explain(s, "a `ping` to be written")?;
        let answer = s
            .wait(&ping_id, self.timeout())
            .await
            .or_explain(s, "the answer to a `ping` with unknown members")
            .map_err(|e| e.amend(|details| details + hint))?;
        ensure(answer.outcome.is_ok(), || {
            format!(
                "after an `initialized` with unknown members, a `ping` with unknown members was answered with {}{hint}",
                show_outcome(&answer.outcome)
            )
        })?;
        Ok("unknown members in the envelope, initialize params, host, limits, capabilities, initialized and ping params were ignored".to_owned())
    }

    async fn second_initialize(&self, s: &mut Session) -> Verdict {
        let params = self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]);
        let answer = s
            .call("initialize", params, self.timeout())
            .await
            .or_explain(s, "the answer to a second `initialize`")?;
        ensure(
            matches!(&answer.outcome, Err(e) if e.code == ErrorCode::AlreadyInitialized),
            || {
                format!(
                    "a second `initialize` was answered with {}; expected error -32007 (already initialized)",
                    show_outcome(&answer.outcome)
                )
            },
        )?;
        let ping = s
            .call("ping", json!({}), self.timeout())
            .await
            .or_explain(s, "the answer to a `ping` after it")
            .map_err(|e| e.amend(|details| format!("answered -32007, but then: {details}")))?;
        ensure(ping.outcome.is_ok(), || {
            format!(
                "answered -32007, but a `ping` after it was answered with {}",
                show_outcome(&ping.outcome)
            )
        })?;
        Ok("answered -32007; the session went on".to_owned())
    }

    async fn negotiation_phase(&mut self) -> Result<(), RunError> {
        let mut s = self.spawn("negotiation")?;
        let started = Instant::now();
        let params = self.initialize_params(&[FUTURE_VERSION, outpost_protocol::PROTOCOL_VERSION]);
        let answer = self.initialize(&mut s, params).await;
        let initialized = matches!(&answer, Ok((_, Answer { outcome: Ok(_), .. })));
        let verdict = match answer {
            Ok((_, answer)) => version_negotiated(&answer),
            Err(stall) => Err(fail(s.explain(
                &stall,
                "the answer to `initialize` offering [\"999\", \"1\"]",
            ))),
        };
        self.results
            .record(HandshakeVersionNegotiation, verdict, Some(started));
        if initialized {
            let _ = s.notify("initialized", self.initialized.clone()).await;
            let _ = s.barrier(self.timeout()).await;
        }
        if !self.results.wants(ShutdownSigterm) {
            return Ok(());
        }
        if s.process().exit_status().is_some() {
            s = self.spawn("negotiation")?;
            let _ = s.settle(Duration::from_millis(200)).await;
        }
        self.sigterm(&mut s).await;
        Ok(())
    }

    async fn unsupported_phase(&mut self) -> Result<(), RunError> {
        let mut s = self.spawn("unsupported")?;
        let started = Instant::now();
        let params = self.initialize_params(&[FUTURE_VERSION]);
        let verdict = match self.initialize(&mut s, params).await {
            Ok((_, answer)) => version_unsupported(&answer),
            Err(stall) => Err(fail(
                s.explain(&stall, "the answer to `initialize` offering only [\"999\"]"),
            )),
        };
        self.results
            .record(HandshakeUnsupportedVersion, verdict, Some(started));
        s.close_stdin();
        let _ = s.wait_exit(EOF_GRACE).await;
        s.drain(Duration::from_millis(200)).await;
        Ok(())
    }
}

/// What the registrations came to.
#[derive(Default)]
struct Judged {
    invalid: Vec<String>,
    undeclared: Vec<String>,
    unknown_hooks: Vec<String>,
    unknown_kinds: Vec<String>,
    legacy_hooks: Vec<String>,
    hooks: usize,
    accepted: Vec<(usize, Registration)>,
    rejected: Vec<RejectedRegistration>,
}

fn version_offered(result: &Value) -> Verdict {
    let chosen = result.get("protocolVersion");
    let offered = outpost_protocol::PROTOCOL_VERSION;
    ensure(chosen.and_then(Value::as_str) == Some(offered), || {
        format!(
            "offered [\"{offered}\"], the plugin chose {}",
            chosen.map_or_else(|| "nothing".to_owned(), Value::to_string)
        )
    })?;
    Ok(format!("chose \"{offered}\""))
}

fn version_negotiated(answer: &Answer) -> Verdict {
    let result = answer.outcome.as_ref().map_err(|e| {
        fail(format!(
            "offered [\"999\", \"1\"], the plugin answered {}; it speaks \"1\", so it must choose it",
            show_error(e)
        ))
    })?;
    let chosen = result.get("protocolVersion");
    ensure(
        chosen.and_then(Value::as_str) == Some(outpost_protocol::PROTOCOL_VERSION),
        || {
            format!(
                "offered [\"999\", \"1\"], the plugin chose {}; pick the first offered version the plugin speaks",
                chosen.map_or_else(|| "nothing".to_owned(), Value::to_string)
            )
        },
    )?;
    Ok("offered [\"999\", \"1\"]: chose \"1\"".to_owned())
}

fn version_unsupported(answer: &Answer) -> Verdict {
    let error = match &answer.outcome {
        Err(e) if e.code == ErrorCode::UnsupportedVersion => e,
        other => {
            return Err(fail(format!(
                "offered only [\"999\"], the plugin answered with {}; expected error -32004 (unsupported protocol version)",
                show_outcome(other)
            )));
        }
    };
    let data = error.data.clone().unwrap_or(Value::Null);
    let supported_ok = data
        .get("supported")
        .and_then(Value::as_array)
        .is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_string));
    let requested_ok = data.get("requested") == Some(&json!([FUTURE_VERSION]));
    ensure(supported_ok && requested_ok, || {
        format!(
            "answered -32004, but with data {data}; expected {{\"supported\": [the plugin's versions], \"requested\": [\"999\"]}}"
        )
    })?;
    Ok(format!(
        "offered [\"999\"]: answered -32004 with data {data}"
    ))
}

/// The known hook event closest to `event`, for "did you mean" hints.
fn closest_hook(event: &str) -> Option<&'static str> {
    HOOK_EVENTS
        .iter()
        .map(|known| (strsim::jaro_winkler(event, known), *known))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

/// The manifest field that must declare a registration, and the id to find there.
fn manifest_field(
    registration: &Registration,
) -> Option<(outpost_protocol::ManifestField, String)> {
    use outpost_protocol::ManifestField;
    match registration {
        Registration::Tool(t) => Some((ManifestField::Contracts("tools"), t.name.clone())),
        Registration::Channel(c) => Some((ManifestField::TopLevel("channels"), c.id.clone())),
        Registration::Provider(p) => Some((p.capability.manifest_field(), p.id.clone())),
        _ => None,
    }
}
