//! The checks themselves: four kinds of session, each a fresh plugin process.
//!
//! 1. **main**: the handshake as the host does it, then the steps in [`MainStep`]
//!    order (gentle ones first, bad lines and shutdown last). When a step leaves the
//!    plugin dead or stuck (a timeout), the next step gets a freshly started and
//!    initialized plugin, so one bug does not hide the others.
//! 2. **early**: requests before `initialize`, an `initialize` full of unknown members,
//!    a second `initialize`, then EOF without `shutdown`.
//! 3. **negotiation**: versions `["999", "1"]`, then SIGTERM.
//! 4. **unsupported**: versions `["999"]` only.
//!
//! The stream checks are judged last, from every line of every session.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use outpost_protocol::methods::RejectedRegistration;
use outpost_protocol::{
    ErrorCode, ErrorObject, HOOK_EVENTS, LEGACY_HOOKS, Registration, RegistrationKind,
    RejectionCode, RequestId, parse_registrations,
};
use serde_json::{Value, json};

use crate::args::arguments_for;
use crate::checks::CheckId::{
    self, CallsCancelAnswered, CallsCommands, CallsGatewayMethods, CallsHooks, CallsHttpRoutes,
    CallsLargeMessage, CallsNonAscii, CallsOperations, CallsPing, CallsServices, CallsTools,
    CallsUnknownName, FixtureCallHost, FixtureCancel, FixtureConcurrency, FixtureEcho,
    FixtureLargeEcho, FixtureLog, FixtureProgress, HandshakeInitialize, HandshakeKnownHooks,
    HandshakeNoEarlyRequests, HandshakeNotInitialized, HandshakePingBeforeInitialize,
    HandshakePluginId, HandshakeRegistrationsDeclared, HandshakeRegistrationsValid,
    HandshakeSecondInitialize, HandshakeUnknownFields, HandshakeUnsupportedVersion,
    HandshakeVersionNegotiation, HandshakeVersionOffered, JsonrpcBatchRejected, JsonrpcIdTypes,
    JsonrpcInvalidParams, JsonrpcInvalidRequest, JsonrpcMethodNotFound, JsonrpcNoErrorStorm,
    JsonrpcNotificationsUnanswered, JsonrpcOversizedLine, JsonrpcParseError,
    JsonrpcResponsesUnanswered, JsonrpcSurvivesBadLines, ShutdownAnswered,
    ShutdownEofWithoutShutdown, ShutdownExitOnEof, ShutdownNoLeftovers, ShutdownSigterm,
    StreamNoContentLength, StreamOnlyMessages, StreamPlainLines, StreamSchemaValid,
    StreamStderrFlood, StreamUnbuffered, StreamWithinLimit,
};
use crate::launch::describe_exit;
use crate::run::{IdSource, Learned, Options, Plan, Results, RunError};
use crate::schemas::result_errors;
use crate::session::{Answer, ECHO_METHOD, EventKind, HostBehaviour, Session, Stall, seconds};
use crate::traffic::{Examples, Shared};

/// Stdin EOF to exit (§5.5).
const EOF_GRACE: Duration = Duration::from_secs(2);
/// SIGTERM to exit (§5.5).
const SIGTERM_GRACE: Duration = Duration::from_secs(3);
/// How long helpers get to leave the group after the plugin exited.
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);
/// `shutdownTimeoutMs` announced in `initialize` (the host's default).
const SHUTDOWN_TIMEOUT_MS: u64 = 3000;
/// `maxConcurrentRequests` announced in `initialize`.
const MAX_CONCURRENT: u32 = 16;
/// A version no plugin speaks.
const FUTURE_VERSION: &str = "999";
/// The share of the step timeout announced as `context.timeoutMs`, in percent.
const CALL_BUDGET_PERCENT: u128 = 80;

/// The steps of the main session, in order. Each step gets a live session: when a
/// step leaves the plugin dead or stuck, the next one starts a fresh plugin.
#[derive(Clone, Copy, Debug)]
enum MainStep {
    Ping,
    IdTypes,
    NonAscii,
    MethodNotFound,
    InvalidParams,
    /// One of the `calls.*` checks of registered names.
    Calls(CheckId),
    UnknownName,
    CancelAnswered,
    /// One of the checks that need the fixture capability.
    Fixture(CheckId),
    LargeMessage,
    NotificationsUnanswered,
    ResponsesUnanswered,
    BadLines,
    OversizedLine,
    Shutdown,
}

const MAIN_STEPS: &[MainStep] = &[
    MainStep::Ping,
    MainStep::IdTypes,
    MainStep::NonAscii,
    MainStep::MethodNotFound,
    MainStep::InvalidParams,
    MainStep::Calls(CallsTools),
    MainStep::Calls(CallsHooks),
    MainStep::Calls(CallsCommands),
    MainStep::Calls(CallsGatewayMethods),
    MainStep::Calls(CallsHttpRoutes),
    MainStep::Calls(CallsServices),
    MainStep::Calls(CallsOperations),
    MainStep::UnknownName,
    MainStep::CancelAnswered,
    MainStep::Fixture(FixtureEcho),
    MainStep::Fixture(FixtureLog),
    MainStep::Fixture(FixtureProgress),
    MainStep::Fixture(FixtureCallHost),
    MainStep::Fixture(FixtureConcurrency),
    MainStep::Fixture(FixtureCancel),
    MainStep::Fixture(StreamStderrFlood),
    MainStep::Fixture(FixtureLargeEcho),
    MainStep::LargeMessage,
    MainStep::NotificationsUnanswered,
    MainStep::ResponsesUnanswered,
    MainStep::BadLines,
    MainStep::OversizedLine,
    MainStep::Shutdown,
];

impl MainStep {
    fn checks(self) -> Vec<CheckId> {
        match self {
            Self::Ping => vec![CallsPing],
            Self::IdTypes => vec![JsonrpcIdTypes],
            Self::NonAscii => vec![CallsNonAscii],
            Self::MethodNotFound => vec![JsonrpcMethodNotFound],
            Self::InvalidParams => vec![JsonrpcInvalidParams],
            Self::Calls(id) | Self::Fixture(id) => vec![id],
            Self::UnknownName => vec![CallsUnknownName],
            Self::CancelAnswered => vec![CallsCancelAnswered],
            Self::LargeMessage => vec![CallsLargeMessage],
            Self::NotificationsUnanswered => vec![JsonrpcNotificationsUnanswered],
            Self::ResponsesUnanswered => vec![JsonrpcResponsesUnanswered],
            Self::BadLines => vec![
                JsonrpcParseError,
                JsonrpcInvalidRequest,
                JsonrpcBatchRejected,
                JsonrpcNoErrorStorm,
                JsonrpcSurvivesBadLines,
            ],
            Self::OversizedLine => vec![JsonrpcOversizedLine],
            Self::Shutdown => vec![ShutdownAnswered, ShutdownExitOnEof, ShutdownNoLeftovers],
        }
    }
}

const EARLY_CHECKS: &[CheckId] = &[
    HandshakePingBeforeInitialize,
    HandshakeNotInitialized,
    HandshakeUnknownFields,
    HandshakeSecondInitialize,
    ShutdownEofWithoutShutdown,
];
const NEGOTIATION_CHECKS: &[CheckId] = &[HandshakeVersionNegotiation, ShutdownSigterm];
const UNSUPPORTED_CHECKS: &[CheckId] = &[HandshakeUnsupportedVersion];
const HANDSHAKE_CHECKS: &[CheckId] = &[
    StreamUnbuffered,
    HandshakeInitialize,
    HandshakeVersionOffered,
    HandshakePluginId,
    HandshakeRegistrationsValid,
    HandshakeRegistrationsDeclared,
    HandshakeKnownHooks,
];

/// The registrations the host accepted, for the calls steps.
#[derive(Clone, Debug, Default)]
struct Accepted {
    registrations: Vec<Registration>,
}

impl Accepted {
    fn of(&self, kind: RegistrationKind) -> impl Iterator<Item = &Registration> {
        self.registrations.iter().filter(move |r| r.kind() == kind)
    }
}

/// Runs the checks against one plan.
pub(crate) struct Runner<'a> {
    plan: &'a Plan,
    options: &'a Options,
    shared: Arc<Shared>,
    results: Results<'a>,
    plugin_id: String,
    id_source: IdSource,
    name: Option<String>,
    version: Option<String>,
    fixture: bool,
    accepted: Accepted,
    /// The `initialized` params sent after the main handshake, reused on restarts.
    initialized: Value,
    handshake_done: bool,
    /// Why the last restart failed, for the checks it leaves unrun.
    restart_failure: Option<String>,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("plugin_id", &self.plugin_id)
            .finish_non_exhaustive()
    }
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        plan: &'a Plan,
        options: &'a Options,
        shared: Arc<Shared>,
        results: Results<'a>,
    ) -> Self {
        Self {
            plan,
            options,
            shared,
            results,
            plugin_id: plan.plugin_id.clone(),
            id_source: plan.id_source,
            name: None,
            version: None,
            fixture: false,
            accepted: Accepted::default(),
            initialized: json!({"accepted": [], "rejected": []}),
            handshake_done: false,
            restart_failure: None,
        }
    }

    pub(crate) fn finish(self) -> (Vec<crate::report::CheckResult>, Learned) {
        let learned = Learned {
            plugin_id: (self.id_source != IdSource::Plugin || self.handshake_done)
                .then(|| self.plugin_id.clone()),
            id_source: self.id_source,
            name: self.name,
            version: self.version,
            fixture: self.fixture,
        };
        (self.results.finish("not run"), learned)
    }

    fn timeout(&self) -> Duration {
        self.options.step_timeout
    }

    fn host(&self) -> HostBehaviour {
        HostBehaviour {
            config: self.plan.config.clone(),
        }
    }

    fn spawn(&self, label: &'static str) -> Result<Session, RunError> {
        Session::spawn(
            &self.shared,
            label,
            &self.plan.launch,
            &self.plugin_id,
            self.host(),
            self.timeout(),
        )
        .map_err(|source| RunError::Spawn {
            command: self.plan.launch.program.display().to_string(),
            source,
        })
    }

    fn initialize_params(&self, versions: &[&str]) -> Value {
        json!({
            "protocolVersions": versions,
            "host": {"name": "outpost-conformance", "version": env!("CARGO_PKG_VERSION")},
            "pluginId": self.plugin_id,
            "config": self.plan.config,
            "limits": {
                "maxMessageBytes": self.options.max_message_bytes,
                "maxConcurrentRequests": MAX_CONCURRENT,
                "shutdownTimeoutMs": SHUTDOWN_TIMEOUT_MS,
            },
            "capabilities": {"runtime": ["host/callMethod", "host/getConfig"]},
            "hostPid": std::process::id(),
        })
    }

    /// Sends `initialize` with `params` and waits for the answer.
    async fn initialize(
        &self,
        s: &mut Session,
        params: Value,
    ) -> Result<(RequestId, Answer), Stall> {
        let id = s.request("initialize", params).await?;
        s.set_limit(self.options.max_message_bytes);
        let answer = s.wait(&id, self.options.handshake_timeout).await?;
        Ok((id, answer))
    }

    pub(crate) async fn run(&mut self) -> Result<(), RunError> {
        self.main_phase().await?;
        if self.handshake_done {
            if self.results.wants_any(EARLY_CHECKS) {
                self.early_phase().await?;
            }
            if self.results.wants_any(NEGOTIATION_CHECKS) {
                self.negotiation_phase().await?;
            }
            if self.results.wants_any(UNSUPPORTED_CHECKS) {
                self.unsupported_phase().await?;
            }
        } else {
            let reason = "not run: the plugin did not complete the handshake (see handshake.initialize or stream.unbuffered)";
            for step in MAIN_STEPS {
                self.results.skip_all(&step.checks(), reason);
            }
            for ids in [EARLY_CHECKS, NEGOTIATION_CHECKS, UNSUPPORTED_CHECKS] {
                self.results.skip_all(ids, reason);
            }
        }
        self.judge_stream();
        Ok(())
    }

    // ==================================================================================
    // Main session

    async fn main_phase(&mut self) -> Result<(), RunError> {
        let mut session = self.spawn("main")?;
        if !self.main_handshake(&mut session).await {
            return Ok(());
        }
        let mut slot = Some(session);
        for &step in MAIN_STEPS {
            let checks = step.checks();
            if !self.results.wants_any(&checks) {
                continue;
            }
            if matches!(step, MainStep::Fixture(_)) && !self.fixture {
                self.results.skip_all(
                    &checks,
                    "the plugin does not declare capabilities.fixture (§13)",
                );
                continue;
            }
            if let MainStep::Calls(check) = step
                && self.probes(check).is_empty()
            {
                self.results.skip(check, no_probes_reason(check));
                continue;
            }
            let Some(s) = self.live(&mut slot).await else {
                let reason = format!(
                    "not run: the plugin could not be restarted for this step ({})",
                    self.restart_failure.clone().unwrap_or_default()
                );
                self.results.skip_all(&checks, &reason);
                continue;
            };
            match step {
                MainStep::Ping => self.ping(s).await,
                MainStep::IdTypes => self.id_types(s).await,
                MainStep::NonAscii => self.non_ascii(s).await,
                MainStep::MethodNotFound => self.method_not_found(s).await,
                MainStep::InvalidParams => self.invalid_params(s).await,
                MainStep::Calls(check) => {
                    let probes = self.probes(check);
                    self.run_probes(s, check, &probes).await;
                }
                MainStep::UnknownName => self.unknown_name(s).await,
                MainStep::CancelAnswered => self.cancel_answered(s).await,
                MainStep::Fixture(check) => match check {
                    FixtureEcho => self.fixture_echo(s).await,
                    FixtureLog => self.fixture_log(s).await,
                    FixtureProgress => self.fixture_progress(s).await,
                    FixtureCallHost => self.fixture_call_host(s).await,
                    FixtureConcurrency => self.fixture_concurrency(s).await,
                    FixtureCancel => self.fixture_cancel(s).await,
                    StreamStderrFlood => self.fixture_stderr(s).await,
                    FixtureLargeEcho => self.fixture_large_echo(s).await,
                    other => unreachable!("{other:?} is not a fixture step"),
                },
                MainStep::LargeMessage => self.large_message(s).await,
                MainStep::NotificationsUnanswered => self.notifications_unanswered(s).await,
                MainStep::ResponsesUnanswered => self.responses_unanswered(s).await,
                MainStep::BadLines => self.bad_lines(s).await,
                MainStep::OversizedLine => self.oversized_line(s).await,
                MainStep::Shutdown => {
                    if let Some(s) = slot.take() {
                        self.shutdown(s).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// The main session if it can go on, else a fresh, initialized one.
    async fn live<'s>(&mut self, slot: &'s mut Option<Session>) -> Option<&'s mut Session> {
        if slot.as_ref().is_some_and(Session::usable) {
            return slot.as_mut();
        }
        // Dropping the old session kills what is left of it.
        *slot = None;
        match self.restart().await {
            Ok(session) => {
                *slot = Some(session);
                slot.as_mut()
            }
            Err(reason) => {
                self.restart_failure = Some(reason);
                None
            }
        }
    }

    async fn restart(&mut self) -> Result<Session, String> {
        let mut s = self.spawn("main/restart").map_err(|e| format!("{e}"))?;
        let params = self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]);
        match self.initialize(&mut s, params).await {
            Ok((_, Answer { outcome: Ok(_), .. })) => {}
            Ok((
                _,
                Answer {
                    outcome: Err(e), ..
                },
            )) => {
                return Err(format!("it answered `initialize` with {}", show_error(&e)));
            }
            Err(stall) => return Err(s.explain(&stall, "the answer to `initialize`")),
        }
        s.notify("initialized", self.initialized.clone())
            .await
            .map_err(|stall| s.explain(&stall, "`initialized` to be written"))?;
        s.set_initialized();
        Ok(s)
    }

    /// The handshake of the main session. False when nothing else can run.
    async fn main_handshake(&mut self, s: &mut Session) -> bool {
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
        if let Err(stall) = s.notify("initialized", self.initialized.clone()).await {
            let _ = stall;
            s.poison();
        }
        s.set_initialized();
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
        // Registrations are judged one by one below; the rest must match the schema.
        let mut shape = result.clone();
        if let Some(registrations) = shape.get_mut("registrations")
            && registrations.is_array()
        {
            *registrations = json!([]);
        }
        let problems = result_errors("initialize", &shape);
        let plugin = result.get("plugin");
        let reported_id = plugin
            .and_then(|p| p.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.name = plugin
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.version = plugin
            .and_then(|p| p.get("version"))
            .and_then(Value::as_str)
            .map(str::to_owned);
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
        if problems.is_empty() {
            self.results.pass(
                HandshakeInitialize,
                format!(
                    "answered in {}: plugin `{}`, {} registrations{}",
                    seconds(started.elapsed()),
                    reported_id.as_deref().unwrap_or("?"),
                    registrations.len(),
                    if self.fixture {
                        ", fixture capability"
                    } else {
                        ""
                    }
                ),
                started,
            );
        } else {
            self.results.fail(
                HandshakeInitialize,
                format!(
                    "the `initialize` result does not match the schema: {}",
                    problems.join("; ")
                ),
                started,
            );
        }

        let chosen = result.get("protocolVersion");
        let offered = outpost_protocol::PROTOCOL_VERSION;
        if chosen.and_then(Value::as_str) == Some(offered) {
            self.results.pass(
                HandshakeVersionOffered,
                format!("chose \"{offered}\""),
                started,
            );
        } else {
            self.results.fail(
                HandshakeVersionOffered,
                format!(
                    "offered [\"{offered}\"], the plugin chose {}",
                    chosen.map_or_else(|| "nothing".to_owned(), Value::to_string)
                ),
                started,
            );
        }

        match (self.id_source, &reported_id) {
            (IdSource::Plugin, Some(id)) => {
                self.plugin_id.clone_from(id);
                self.results.skip(
                    HandshakePluginId,
                    format!("no manifest id to compare with: the plugin says `{id}`; pass --plugin-id or --plugin-dir to check it"),
                );
            }
            (IdSource::Plugin, None) => {
                self.results.skip(
                    HandshakePluginId,
                    "no manifest id, and the plugin sent none",
                );
            }
            (_, Some(id)) if *id == self.plugin_id => {
                self.results
                    .pass(HandshakePluginId, format!("`{id}`"), started);
            }
            (source, reported) => {
                let whose = if source == IdSource::Manifest {
                    "the manifest id"
                } else {
                    "--plugin-id"
                };
                self.results.fail(
                    HandshakePluginId,
                    format!(
                        "plugin.id is {} but {whose} is `{}`; the host refuses such a plugin",
                        reported
                            .as_ref()
                            .map_or_else(|| "missing".to_owned(), |id| format!("`{id}`")),
                        self.plugin_id
                    ),
                    started,
                );
            }
        }
        self.judge_registrations(&registrations, started);
    }

    fn judge_registrations(&mut self, values: &[Value], started: Instant) {
        let mut invalid = Vec::new();
        let mut undeclared = Vec::new();
        let mut unknown_hooks = Vec::new();
        let mut legacy_hooks = Vec::new();
        let mut hooks = 0;
        let mut accepted = Vec::new();
        let mut verdicts = Vec::new();
        let mut seen: HashSet<(RegistrationKind, String)> = HashSet::new();
        for (index, parsed) in parse_registrations(values).into_iter().enumerate() {
            let registration = match parsed {
                Ok(r) => r,
                Err(rejected) => {
                    invalid.push(format!("registrations[{index}]: {}", rejected.reason));
                    verdicts.push(Err(rejected));
                    continue;
                }
            };
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
                hooks += 1;
            }
            if let Err(problem) = registration.check(&self.plugin_id) {
                if problem.code == RejectionCode::UnknownHook {
                    let hint = closest_hook(&key)
                        .map(|event| format!(" (did you mean `{event}`?)"))
                        .unwrap_or_default();
                    unknown_hooks.push(format!("{label}: {}{hint}", problem.reason));
                } else {
                    invalid.push(format!("{label}: {problem}"));
                }
                verdicts.push(Err(reject(problem.code, problem.reason)));
                continue;
            }
            if let Registration::Tool(tool) = &registration
                && let Err(e) = jsonschema::validator_for(&tool.input_schema)
            {
                let reason = format!("`inputSchema` does not compile: {e}");
                invalid.push(format!("{label}: {reason}"));
                verdicts.push(Err(reject(RejectionCode::Invalid, reason)));
                continue;
            }
            if let Registration::Hook(hook) = &registration
                && LEGACY_HOOKS.contains(&hook.event.as_str())
            {
                legacy_hooks.push(hook.event.clone());
            }
            if !seen.insert((kind, key.clone())) {
                let reason =
                    format!("{kind} `{key}` is registered twice; the host keeps the first");
                invalid.push(format!("{label}: {reason}"));
                verdicts.push(Err(reject(RejectionCode::Duplicate, reason)));
                continue;
            }
            if let Some(manifest) = &self.plan.manifest
                && let Some((field, id)) = manifest_field(&registration)
            {
                let declared = manifest.declared(field).unwrap_or_default();
                if !declared.contains(&id) {
                    let reason = format!(
                        "{kind} `{id}` is not declared in the manifest's `{field}`; add it there (the manifest is what the operator reviewed)"
                    );
                    undeclared.push(format!("{label}: {reason}"));
                    verdicts.push(Err(reject(RejectionCode::NotDeclared, reason)));
                    continue;
                }
            }
            verdicts.push(Ok((index, kind, key)));
            accepted.push(registration);
        }

        let total = values.len();
        if invalid.is_empty() {
            self.results.pass(
                HandshakeRegistrationsValid,
                format!("{total} registrations, all well formed"),
                started,
            );
        } else {
            self.results
                .fail(HandshakeRegistrationsValid, invalid.join("; "), started);
        }
        if self.plan.manifest.is_none() {
            self.results.skip(
                HandshakeRegistrationsDeclared,
                "no manifest: run with --plugin-dir to check that registrations are declared",
            );
        } else if undeclared.is_empty() {
            self.results.pass(
                HandshakeRegistrationsDeclared,
                "every tool, channel and provider is declared",
                started,
            );
        } else {
            self.results.fail(
                HandshakeRegistrationsDeclared,
                undeclared.join("; "),
                started,
            );
        }
        if hooks == 0 {
            self.results
                .skip(HandshakeKnownHooks, "the plugin registers no hooks");
        } else if unknown_hooks.is_empty() {
            let mut note = format!("{hooks} hooks, all known events");
            if !legacy_hooks.is_empty() {
                let _ = write!(
                    note,
                    " ({} is a legacy hook: it works, but prefer its replacement)",
                    legacy_hooks.join(", ")
                );
            }
            self.results.pass(HandshakeKnownHooks, note, started);
        } else {
            self.results.fail(
                HandshakeKnownHooks,
                format!(
                    "{}; §9.2 lists the events the host knows",
                    unknown_hooks.join("; ")
                ),
                started,
            );
        }

        let mut accepted_json = Vec::new();
        let mut rejected_json = Vec::new();
        for verdict in verdicts {
            match verdict {
                Ok((index, kind, key)) => {
                    accepted_json.push(json!({"index": index, "kind": kind, "key": key}));
                }
                Err(rejected) => rejected_json
                    .push(serde_json::to_value(&rejected).expect("a rejection serializes")),
            }
        }
        self.initialized = json!({"accepted": accepted_json, "rejected": rejected_json});
        self.accepted = Accepted {
            registrations: accepted,
        };
    }

    // ----------------------------------------------------------------------------------
    // Main steps

    async fn ping(&mut self, s: &mut Session) {
        let started = Instant::now();
        match s.call("ping", json!({}), self.timeout()).await {
            Ok(Answer {
                outcome: Ok(result),
                ..
            }) if result.is_object() => {
                self.results.pass(
                    CallsPing,
                    format!("answered in {}", seconds(started.elapsed())),
                    started,
                );
            }
            Ok(answer) => self.results.fail(
                CallsPing,
                format!(
                    "`ping` was answered with {}; expected the result {{}}",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                CallsPing,
                s.explain(&stall, "the answer to `ping`"),
                started,
            ),
        }
    }

    async fn id_types(&mut self, s: &mut Session) {
        let started = Instant::now();
        let ids = [
            json!("conformance-7"),
            json!("7"),
            json!(""),
            json!(7.5),
            json!(-3),
            json!(0),
            json!(1_000_000_007),
        ];
        let mut sent = Vec::new();
        for raw in &ids {
            let id = RequestId::from_value(raw).expect("string and number ids");
            if let Err(stall) = s.request_with_id(id.clone(), "ping", json!({})).await {
                self.results.fail(
                    JsonrpcIdTypes,
                    s.explain(&stall, "the pings to be written"),
                    started,
                );
                return;
            }
            sent.push(id);
        }
        let mark = s.mark();
        let barrier = s.barrier(self.timeout()).await;
        let mut problems = Vec::new();
        for id in &sent {
            match s.wait(id, Duration::ZERO).await {
                Ok(_) => {}
                Err(_) => problems.push(format!("no answer with id {id} ({})", id_type(id))),
            }
        }
        let foreign: Vec<String> = s
            .events_since(mark)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Unsolicited(r) => Some(match &r.id {
                    Some(id) => format!(
                        "an answer with id {id} ({}), which the suite never sent",
                        id_type(id)
                    ),
                    None => "an error with id null".to_owned(),
                }),
                _ => None,
            })
            .collect();
        problems.extend(foreign);
        if let Err(stall) = barrier {
            problems.push(s.explain(&stall, "the answer to a `ping`"));
        }
        if problems.is_empty() {
            self.results.pass(
                JsonrpcIdTypes,
                "ids \"conformance-7\", \"7\", \"\", 7.5, -3, 0 and 1000000007 came back as sent",
                started,
            );
        } else {
            self.results.fail(
                JsonrpcIdTypes,
                format!(
                    "{}; a response carries its request's id with the same JSON type and value",
                    problems.join("; ")
                ),
                started,
            );
        }
    }

    async fn non_ascii(&mut self, s: &mut Session) {
        let started = Instant::now();
        let id = RequestId::from("conformance-ünïcødé-日本語-🎉");
        let mark = s.mark();
        if let Err(stall) = s
            .request_with_id(
                id.clone(),
                "ping",
                json!({"note": "ünïcødé ✓ 日本語 🎉 \u{2028}"}),
            )
            .await
        {
            self.results.fail(
                CallsNonAscii,
                s.explain(&stall, "the ping to be written"),
                started,
            );
            return;
        }
        let barrier = s.barrier(self.timeout()).await;
        if s.wait(&id, Duration::ZERO).await.is_ok() {
            self.results.pass(
                CallsNonAscii,
                format!("the id {id} came back intact"),
                started,
            );
            return;
        }
        let mangled: Vec<String> = s
            .events_since(mark)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Unsolicited(r) => r.id.as_ref().map(ToString::to_string),
                _ => None,
            })
            .collect();
        let details = match (mangled.is_empty(), barrier) {
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
        };
        self.results.fail(CallsNonAscii, details, started);
    }

    async fn method_not_found(&mut self, s: &mut Session) {
        let started = Instant::now();
        let method = "conformance/no-such-method";
        match s.call(method, json!({}), self.timeout()).await {
            Ok(Answer {
                outcome: Err(e), ..
            }) if e.code == ErrorCode::MethodNotFound => self.results.pass(
                JsonrpcMethodNotFound,
                format!("`{method}` was answered -32601"),
                started,
            ),
            Ok(answer) => self.results.fail(
                JsonrpcMethodNotFound,
                format!(
                    "`{method}` was answered with {}; expected error -32601",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                JsonrpcMethodNotFound,
                s.explain(&stall, &format!("the answer to `{method}`")),
                started,
            ),
        }
    }

    /// A call the plugin can decode only if it checks params: the fixture's sleep, or a
    /// registered tool, command, method... with params of the wrong type.
    fn invalid_params_probe(&self) -> Option<(String, Value)> {
        if self.fixture {
            return Some(("fixture/sleep".into(), json!({"ms": "soon"})));
        }
        let context = json!({});
        for registration in &self.accepted.registrations {
            let probe = match registration {
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
                _ => continue,
            };
            return Some((probe.0.to_owned(), probe.1));
        }
        None
    }

    async fn invalid_params(&mut self, s: &mut Session) {
        let started = Instant::now();
        let Some((method, params)) = self.invalid_params_probe() else {
            self.results.skip(
                JsonrpcInvalidParams,
                "the plugin registers nothing whose params could be sent wrongly typed",
            );
            return;
        };
        match s.call(&method, params.clone(), self.timeout()).await {
            Ok(Answer {
                outcome: Err(e), ..
            }) if e.code == ErrorCode::InvalidParams => self.results.pass(
                JsonrpcInvalidParams,
                format!("`{method}` with params {params} was answered -32602"),
                started,
            ),
            Ok(answer) => self.results.fail(
                JsonrpcInvalidParams,
                format!(
                    "`{method}` with params {params} was answered with {}; expected error -32602 (invalid params)",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                JsonrpcInvalidParams,
                s.explain(&stall, &format!("the answer to `{method}` with wrongly typed params")),
                started,
            ),
        }
    }

    /// The call context of every invocation. `timeoutMs` is [`CALL_BUDGET_PERCENT`] of
    /// the step timeout: a plugin that uses all the budget it was given (a long poll that
    /// answers just before its deadline) must not fail because its answer took a few
    /// milliseconds to cross the pipe.
    fn context(&self) -> Value {
        let budget = self.timeout().as_millis() * CALL_BUDGET_PERCENT / 100;
        json!({
            "sessionKey": "agent:conformance:1",
            "agentId": "conformance",
            "timeoutMs": u64::try_from(budget).unwrap_or(u64::MAX),
        })
    }

    /// The calls that check the registrations of one kind.
    fn probes(&self, check: CheckId) -> Vec<Probe> {
        let context = self.context();
        let probe = |what: String, method: &'static str, params: Value| Probe {
            what,
            method,
            params,
            expect: Expect::Answer,
            note: None,
        };
        let mut probes = Vec::new();
        for registration in &self.accepted.registrations {
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
                (CallsHooks, Registration::Hook(h)) => probes.push(probe(
                    format!("hook `{}`", h.event),
                    "hook/run",
                    json!({"event": h.event, "payload": {}, "context": context}),
                )),
                (CallsCommands, Registration::Command(c)) => {
                    let name = c.name.trim().to_lowercase();
                    let mut params = json!({
                        "name": name,
                        "commandBody": format!("/{name}"),
                        "context": {
                            "channel": "conformance", "senderId": "conformance",
                            "isAuthorizedSender": true, "timeoutMs": context["timeoutMs"],
                        },
                    });
                    if c.accepts_args {
                        params["args"] = json!("");
                    }
                    probes.push(probe(format!("command `/{name}`"), "command/run", params));
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
                    const OPERATION: &str = "conformanceNoSuchOperation";
                    let (what, method, params) = match registration {
                        Registration::Provider(p) => (
                            format!("provider `{}:{}`", p.capability, p.id),
                            "provider/call",
                            json!({"capability": p.capability, "id": p.id, "operation": OPERATION, "params": {}, "context": context}),
                        ),
                        Registration::Channel(c) => (
                            format!("channel `{}`", c.id),
                            "channel/call",
                            json!({"id": c.id, "operation": OPERATION, "params": {}, "context": context}),
                        ),
                        Registration::ContextEngine(e) => (
                            format!("context engine `{}`", e.id),
                            "contextEngine/call",
                            json!({"id": e.id, "operation": OPERATION, "params": {}, "context": context}),
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

    async fn run_probes(&mut self, s: &mut Session, check: CheckId, probes: &[Probe]) {
        let started = Instant::now();
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        for probe in probes {
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
            self.results.pass(check, notes.join("; "), started);
        } else {
            problems.extend(notes);
            self.results.fail(check, problems.join("; "), started);
        }
    }

    async fn unknown_name(&mut self, s: &mut Session) {
        let started = Instant::now();
        let kinds: BTreeSet<RegistrationKind> = self
            .accepted
            .registrations
            .iter()
            .map(Registration::kind)
            .collect();
        let context = self.context();
        let mut probes: Vec<(&str, &str, String, Value)> = Vec::new();
        if kinds.contains(&RegistrationKind::Tool) {
            let name = "conformance_no_such_tool".to_owned();
            probes.push((
                "tool",
                "tool/invoke",
                name.clone(),
                json!({"name": name, "arguments": {}, "context": context}),
            ));
        }
        if kinds.contains(&RegistrationKind::Command) {
            let name = "conformance-no-such-command".to_owned();
            probes.push((
                "command",
                "command/run",
                name.clone(),
                json!({"name": name, "commandBody": format!("/{name}"), "context": context}),
            ));
        }
        if kinds.contains(&RegistrationKind::GatewayMethod) {
            let name = format!("{}.conformanceNoSuchMethod", self.plugin_id);
            probes.push((
                "gatewayMethod",
                "method/call",
                name.clone(),
                json!({"method": name, "params": {}, "context": context}),
            ));
        }
        if kinds.contains(&RegistrationKind::Hook) {
            let registered: HashSet<String> = self
                .accepted
                .of(RegistrationKind::Hook)
                .map(Registration::key)
                .collect();
            if let Some(event) = HOOK_EVENTS.iter().find(|e| !registered.contains(**e)) {
                probes.push((
                    "hook",
                    "hook/run",
                    (*event).to_owned(),
                    json!({"event": event, "payload": {}, "context": context}),
                ));
            }
        }
        if kinds.contains(&RegistrationKind::Service) {
            let name = "conformance-no-such-service".to_owned();
            probes.push((
                "service",
                "service/start",
                name.clone(),
                json!({"id": name}),
            ));
        }
        if kinds.contains(&RegistrationKind::HttpRoute) {
            let name = "/conformance/no-such-route".to_owned();
            probes.push(("httpRoute", "http/handle", name.clone(), json!({"route": name, "request": {"method": "GET", "path": name, "headers": {}}, "context": context})));
        }
        if probes.is_empty() {
            self.results.skip(
                CallsUnknownName,
                "the plugin registers no tools, commands, gateway methods, hooks, services or routes",
            );
            return;
        }
        let mut problems = Vec::new();
        let mut fine = Vec::new();
        for (kind, method, name, params) in probes {
            match s.call(method, params, self.timeout()).await {
                Ok(Answer {
                    outcome: Err(e), ..
                }) if e.code == ErrorCode::NotFound => {
                    let data_kind = e.data.as_ref().and_then(|d| d.get("kind")).and_then(Value::as_str);
                    let data_name = e.data.as_ref().and_then(|d| d.get("name")).and_then(Value::as_str);
                    if data_kind == Some(kind) && data_name == Some(name.as_str()) {
                        fine.push(format!("`{method}` for `{name}`"));
                    } else {
                        problems.push(format!(
                            "`{method}` for `{name}` was answered -32008 with data {}; expected {}",
                            e.data.as_ref().map_or_else(|| "missing".to_owned(), Value::to_string),
                            json!({"kind": kind, "name": name})
                        ));
                    }
                }
                Ok(answer) => problems.push(format!(
                    "`{method}` for the unregistered {kind} `{name}` was answered with {}; expected error -32008 (not found)",
                    show_outcome(&answer.outcome)
                )),
                Err(stall) => {
                    problems.push(s.explain(&stall, &format!("the answer to `{method}` for `{name}`")));
                    if !s.usable() {
                        break;
                    }
                }
            }
        }
        if problems.is_empty() {
            self.results.pass(
                CallsUnknownName,
                format!("answered -32008 with kind and name: {}", fine.join(", ")),
                started,
            );
        } else {
            self.results
                .fail(CallsUnknownName, problems.join("; "), started);
        }
    }

    async fn cancel_answered(&mut self, s: &mut Session) {
        let started = Instant::now();
        let (method, params) = match self.accepted.of(RegistrationKind::Tool).next() {
            Some(Registration::Tool(tool)) => (
                "tool/invoke",
                json!({"name": tool.name, "arguments": arguments_for(&tool.input_schema).0, "context": self.context()}),
            ),
            _ => ("ping", json!({})),
        };
        let id = match s.request(method, params).await {
            Ok(id) => id,
            Err(stall) => {
                self.results.fail(
                    CallsCancelAnswered,
                    s.explain(&stall, "the request to be written"),
                    started,
                );
                return;
            }
        };
        let mark = s.mark();
        let _ = s.notify("$/cancel", json!({"id": id})).await;
        let answer = s.wait(&id, self.timeout()).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(stall) => {
                self.results.fail(
                    CallsCancelAnswered,
                    format!(
                        "{}; a cancelled request must still be answered (its result, or -32800)",
                        s.explain(&stall, &format!("the answer to the cancelled `{method}`"))
                    ),
                    started,
                );
                return;
            }
        };
        let _ = s.barrier(self.timeout()).await;
        let duplicates = s
            .events_since(mark)
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Duplicate(r) if r.id.as_ref() == Some(&id)))
            .count();
        if duplicates > 0 {
            self.results.fail(
                CallsCancelAnswered,
                format!(
                    "the cancelled `{method}` was answered {} times",
                    duplicates + 1
                ),
                started,
            );
        } else {
            self.results.pass(
                CallsCancelAnswered,
                format!(
                    "`{method}` cancelled at once was answered once, with {}",
                    show_outcome(&answer.outcome)
                ),
                started,
            );
        }
    }

    // ----------------------------------------------------------------------------------
    // Fixture checks

    async fn fixture_call(
        &mut self,
        s: &mut Session,
        check: CheckId,
        method: &str,
        params: Value,
        started: Instant,
    ) -> Option<Result<Value, ErrorObject>> {
        match s.call(method, params, self.timeout()).await {
            Ok(answer) => Some(answer.outcome),
            Err(stall) => {
                self.results.fail(
                    check,
                    s.explain(&stall, &format!("the answer to `{method}`")),
                    started,
                );
                None
            }
        }
    }

    async fn fixture_echo(&mut self, s: &mut Session) {
        let started = Instant::now();
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
        let Some(outcome) = self
            .fixture_call(
                s,
                FixtureEcho,
                "fixture/echo",
                json!({"value": value}),
                started,
            )
            .await
        else {
            return;
        };
        match outcome {
            Ok(result) if result.get("value") == Some(&value) => {
                self.results
                    .pass(FixtureEcho, "the value came back unchanged", started);
            }
            Ok(result) => {
                let got = result.get("value").cloned().unwrap_or(Value::Null);
                self.results.fail(
                    FixtureEcho,
                    format!(
                        "the value came back changed: {}",
                        first_difference(&value, &got, "value")
                    ),
                    started,
                );
            }
            Err(e) => self.results.fail(
                FixtureEcho,
                format!("`fixture/echo` was answered with {}", show_error(&e)),
                started,
            ),
        }
    }

    async fn fixture_log(&mut self, s: &mut Session) {
        let started = Instant::now();
        let mark = s.mark();
        let params = json!({"level": "notice", "message": "conformance log ✓ ünïcødé", "logger": "conformance", "fields": {"k": 1}});
        let Some(outcome) = self
            .fixture_call(s, FixtureLog, "fixture/log", params.clone(), started)
            .await
        else {
            return;
        };
        if let Err(e) = outcome {
            self.results.fail(
                FixtureLog,
                format!("`fixture/log` was answered with {}", show_error(&e)),
                started,
            );
            return;
        }
        let logged = s.events_since(mark).iter().any(|e| match &e.kind {
            EventKind::Notification(n) if n.method == "log" => n.params.as_ref().is_some_and(|p| {
                p.get("level") == params.get("level") && p.get("message") == params.get("message")
            }),
            _ => false,
        });
        if logged {
            self.results.pass(
                FixtureLog,
                "the `log` notification came before the answer",
                started,
            );
        } else {
            self.results.fail(
                FixtureLog,
                "no `log` notification with level \"notice\" and the message sent arrived before the answer to `fixture/log`",
                started,
            );
        }
    }

    async fn fixture_progress(&mut self, s: &mut Session) {
        let started = Instant::now();
        let steps = 5;
        let id = match s.request("fixture/progress", json!({"steps": steps})).await {
            Ok(id) => id,
            Err(stall) => {
                self.results.fail(
                    FixtureProgress,
                    s.explain(&stall, "the request to be written"),
                    started,
                );
                return;
            }
        };
        let mark = s.mark();
        let answer = match s.wait(&id, self.timeout()).await {
            Ok(answer) => answer,
            Err(stall) => {
                self.results.fail(
                    FixtureProgress,
                    s.explain(&stall, "the answer to `fixture/progress`"),
                    started,
                );
                return;
            }
        };
        let answered_at = answer.at;
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
            if event.at > answered_at {
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
        if problems.is_empty() {
            self.results.pass(
                FixtureProgress,
                "5 progress notifications in order, then the answer",
                started,
            );
        } else {
            self.results
                .fail(FixtureProgress, problems.join("; "), started);
        }
    }

    async fn fixture_call_host(&mut self, s: &mut Session) {
        let started = Instant::now();
        let config = Value::Object(self.plan.config.clone());
        let cases: Vec<(Value, Box<Judge>, String)> = vec![
            (
                json!({"method": "ping", "params": {}}),
                Box::new(|r: &Value| r.get("result") == Some(&json!({}))),
                "{\"result\": {}}".to_owned(),
            ),
            (
                json!({"method": "host/getConfig", "params": {}}),
                Box::new(move |r: &Value| {
                    r.get("result").and_then(|result| result.get("config")) == Some(&config)
                }),
                "{\"result\": {\"config\": <the config sent in initialize>, \"gateway\": {}}}"
                    .to_owned(),
            ),
            (
                json!({"method": "host/callMethod", "params": {"method": ECHO_METHOD, "params": {"text": "ünï ✓"}}}),
                Box::new(|r: &Value| r.get("result") == Some(&json!({"text": "ünï ✓"}))),
                "{\"result\": {\"text\": \"ünï ✓\"}}".to_owned(),
            ),
            (
                json!({"method": "host/callMethod", "params": {"method": "nobody.nothing", "params": {}}}),
                Box::new(|r: &Value| error_code(r) == Some(-32008)),
                "{\"error\": {\"code\": -32008, ...}}".to_owned(),
            ),
            (
                json!({"method": "conformance/unknown", "params": {}}),
                Box::new(|r: &Value| error_code(r) == Some(-32601)),
                "{\"error\": {\"code\": -32601, ...}}".to_owned(),
            ),
        ];
        let mut problems = Vec::new();
        for (params, ok, expected) in cases {
            let method = params["method"].as_str().unwrap_or_default().to_owned();
            let mark = s.mark();
            let Some(outcome) = self
                .fixture_call(s, FixtureCallHost, "fixture/callHost", params, started)
                .await
            else {
                return;
            };
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
        if problems.is_empty() {
            self.results.pass(
                FixtureCallHost,
                "ping, host/getConfig, host/callMethod (found and not found) and an unknown method went to the host and back",
                started,
            );
        } else {
            self.results
                .fail(FixtureCallHost, problems.join("; "), started);
        }
    }

    async fn fixture_concurrency(&mut self, s: &mut Session) {
        let started = Instant::now();
        let mut sleeps = Vec::new();
        for ms in [900, 600, 300] {
            match s.request("fixture/sleep", json!({"ms": ms})).await {
                Ok(id) => sleeps.push((ms, id)),
                Err(stall) => {
                    self.results.fail(
                        FixtureConcurrency,
                        s.explain(&stall, "the sleeps to be written"),
                        started,
                    );
                    return;
                }
            }
        }
        let ping = match s.request("ping", json!({})).await {
            Ok(id) => id,
            Err(stall) => {
                self.results.fail(
                    FixtureConcurrency,
                    s.explain(&stall, "the ping to be written"),
                    started,
                );
                return;
            }
        };
        let budget = self.timeout() + Duration::from_millis(900);
        let mut problems = Vec::new();
        for id in std::iter::once(&ping).chain(sleeps.iter().map(|(_, id)| id)) {
            if let Err(stall) = s.wait(id, budget).await {
                problems.push(s.explain(&stall, &format!("the answer to request {id}")));
                break;
            }
        }
        if problems.is_empty() {
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
            if order == expected {
                self.results.pass(
                    FixtureConcurrency,
                    "answers came in the order ping, sleep 300, sleep 600, sleep 900",
                    started,
                );
            } else {
                problems.push(format!(
                    "sent sleep 900, sleep 600, sleep 300, ping; answers came in the order {}: the plugin handles requests one at a time. Read stdin continuously and run handlers concurrently (§4)",
                    order.join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            self.results
                .fail(FixtureConcurrency, problems.join("; "), started);
        }
    }

    async fn fixture_cancel(&mut self, s: &mut Session) {
        let started = Instant::now();
        let id = match s.request("fixture/sleep", json!({"ms": 60_000})).await {
            Ok(id) => id,
            Err(stall) => {
                self.results.fail(
                    FixtureCancel,
                    s.explain(&stall, "the sleep to be written"),
                    started,
                );
                return;
            }
        };
        let _ = s.settle(Duration::from_millis(100)).await;
        let _ = s.notify("$/cancel", json!({"id": id})).await;
        let cancelled_at = Instant::now();
        match s.wait(&id, self.timeout()).await {
            Ok(Answer {
                outcome: Err(e),
                at,
            }) if e.code == ErrorCode::Cancelled => self.results.pass(
                FixtureCancel,
                format!(
                    "a 60 s sleep was answered -32800 {} after `$/cancel`",
                    seconds(at.saturating_duration_since(cancelled_at))
                ),
                started,
            ),
            Ok(answer) => self.results.fail(
                FixtureCancel,
                format!(
                    "the cancelled 60 s sleep was answered with {}; expected error -32800",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                FixtureCancel,
                format!(
                    "{}: `$/cancel` did not stop the sleep",
                    s.explain(&stall, "the answer to a cancelled 60 s `fixture/sleep`")
                ),
                started,
            ),
        }
    }

    async fn fixture_stderr(&mut self, s: &mut Session) {
        let started = Instant::now();
        let bytes: u64 = 4 * 1024 * 1024;
        let before = s.stderr_bytes();
        let flood = match s.request("fixture/stderr", json!({"bytes": bytes})).await {
            Ok(id) => id,
            Err(stall) => {
                self.results.fail(
                    StreamStderrFlood,
                    s.explain(&stall, "the request to be written"),
                    started,
                );
                return;
            }
        };
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
        if problems.is_empty() {
            self.results.pass(
                StreamStderrFlood,
                format!("{got} bytes on stderr; requests were answered meanwhile"),
                started,
            );
        } else {
            self.results
                .fail(StreamStderrFlood, problems.join("; "), started);
        }
    }

    async fn fixture_large_echo(&mut self, s: &mut Session) {
        let started = Instant::now();
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
        let Some(outcome) = self
            .fixture_call(
                s,
                FixtureLargeEcho,
                "fixture/echo",
                json!({"value": text}),
                started,
            )
            .await
        else {
            return;
        };
        match outcome {
            Ok(result) if result.get("value").and_then(Value::as_str) == Some(text.as_str()) => {
                self.results.pass(
                    FixtureLargeEcho,
                    format!("a {size}-byte string came back intact (limit {limit})"),
                    started,
                );
            }
            Ok(result) => {
                let got = result
                    .get("value")
                    .and_then(Value::as_str)
                    .map_or(0, str::len);
                self.results.fail(
                    FixtureLargeEcho,
                    format!("sent a {size}-byte string; got back a different value ({got} bytes)"),
                    started,
                );
            }
            Err(e) => self.results.fail(
                FixtureLargeEcho,
                format!(
                    "a {size}-byte echo (answer under the {limit}-byte limit) was answered with {}",
                    show_error(&e)
                ),
                started,
            ),
        }
    }

    // ----------------------------------------------------------------------------------
    // Size, notifications, responses, bad lines

    /// A ping padded to `size` bytes on the wire.
    fn padded_ping(id: &str, size: usize) -> Vec<u8> {
        let base = json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"padding": ""}})
            .to_string();
        let pad = size.saturating_sub(base.len());
        json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"padding": "x".repeat(pad)}})
            .to_string()
            .into_bytes()
    }

    async fn large_message(&mut self, s: &mut Session) {
        let started = Instant::now();
        let limit = self.options.max_message_bytes;
        let id = "conformance-large";
        let line = Self::padded_ping(id, limit - 256);
        s.expect_answer(RequestId::from(id), "ping");
        let mark = s.mark();
        let answer = match s.send_line(&line).await {
            Ok(()) => {
                s.wait_or(
                    &RequestId::from(id),
                    mark,
                    self.timeout(),
                    |e| matches!(&e.kind, EventKind::Unsolicited(r) if r.id.is_none()),
                )
                .await
            }
            Err(stall) => Err(stall),
        };
        let answer = match answer {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(Stall::Timeout(Duration::ZERO)),
            Err(stall) => Err(stall),
        };
        match answer {
            Ok(Answer {
                outcome: Ok(_), ..
            }) => self.results.pass(
                CallsLargeMessage,
                format!("a {}-byte `ping` was answered (limit {limit})", line.len()),
                started,
            ),
            Ok(Answer {
                outcome: Err(e), ..
            }) => self.results.fail(
                CallsLargeMessage,
                format!(
                    "a {}-byte `ping` (under the announced {limit}-byte limit) was answered with {}: the plugin's line reader has a lower limit (64 KiB is common, e.g. Go's bufio.Scanner); size it from limits.maxMessageBytes",
                    line.len(),
                    show_error(&e)
                ),
                started,
            ),
            Err(stall) => {
                let refused = s.events_since(mark).iter().find_map(|e| match &e.kind {
                    EventKind::Unsolicited(r) if r.id.is_none() => Some(show_response(r)),
                    _ => None,
                });
                let details = match refused {
                    Some(refusal) => format!(
                        "a {}-byte `ping` (under the announced {limit}-byte limit) was refused with {refusal}: the plugin's line reader has a lower limit (64 KiB is common, e.g. Go's bufio.Scanner); size it from limits.maxMessageBytes",
                        line.len()
                    ),
                    None => s.explain(
                        &stall,
                        &format!("the answer to a {}-byte `ping` (limit {limit})", line.len()),
                    ),
                };
                self.results.fail(CallsLargeMessage, details, started);
            }
        }
    }

    async fn notifications_unanswered(&mut self, s: &mut Session) {
        let started = Instant::now();
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
            if let Err(stall) = s.notify(method, params).await {
                self.results.fail(
                    JsonrpcNotificationsUnanswered,
                    s.explain(&stall, "the notifications to be written"),
                    started,
                );
                return;
            }
        }
        if let Err(stall) = s.barrier(self.timeout()).await {
            self.results.fail(
                JsonrpcNotificationsUnanswered,
                s.explain(
                    &stall,
                    "the answer to a `ping` sent after three notifications",
                ),
                started,
            );
            return;
        }
        let answers = unsolicited_since(s, mark);
        if answers.is_empty() {
            self.results.pass(
                JsonrpcNotificationsUnanswered,
                "`conformance/notice`, `$/cancel` and `$/progress` for an unknown id got no answer",
                started,
            );
        } else {
            self.results.fail(
                JsonrpcNotificationsUnanswered,
                format!(
                    "after an unknown notification, a `$/cancel` and a `$/progress` for an id not in flight, the plugin sent {}; notifications are never answered",
                    answers.join(", ")
                ),
                started,
            );
        }
    }

    async fn responses_unanswered(&mut self, s: &mut Session) {
        let started = Instant::now();
        let mark = s.mark();
        let lines = [
            r#"{"jsonrpc":"2.0","id":"conformance-never-sent","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"conformance-never-sent-2","error":{"code":-32603,"message":"conformance: an error response to a request nobody sent"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"conformance: the host could not read a line (this is a test)"}}"#,
        ];
        for line in lines {
            if let Err(stall) = s.send_line(line.as_bytes()).await {
                self.results.fail(
                    JsonrpcResponsesUnanswered,
                    s.explain(&stall, "the responses to be written"),
                    started,
                );
                return;
            }
        }
        if let Err(stall) = s.barrier(self.timeout()).await {
            self.results.fail(
                JsonrpcResponsesUnanswered,
                s.explain(
                    &stall,
                    "the answer to a `ping` sent after three stray responses",
                ),
                started,
            );
            return;
        }
        let answers = unsolicited_since(s, mark);
        if answers.is_empty() {
            self.results.pass(
                JsonrpcResponsesUnanswered,
                "responses to unknown ids and an error with id null got no answer",
                started,
            );
        } else {
            self.results.fail(
                JsonrpcResponsesUnanswered,
                format!(
                    "after three responses the plugin never asked for, it sent {}; responses are never answered, or two peers can answer each other forever",
                    answers.join(", ")
                ),
                started,
            );
        }
    }

    /// Sends one bad line, then a barrier; returns what came back in between.
    async fn bad_line(
        &self,
        s: &mut Session,
        line: &[u8],
    ) -> Result<Vec<outpost_protocol::Response>, String> {
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

    async fn bad_lines(&mut self, s: &mut Session) {
        let started = Instant::now();
        let pid = s.process().pid();
        let mut storms = Vec::new();
        let mut fatal: Option<String> = None;

        // -32700: not JSON, not UTF-8.
        let parse_cases: [(&str, &[u8]); 2] = [
            ("a line that is not JSON", b"this is not JSON {"),
            (
                "a line that is not UTF-8",
                b"{\"jsonrpc\":\"2.0\",\"id\":\"conformance-\xff\xfe\",\"method\":\"ping\"}",
            ),
        ];
        let mut problems = Vec::new();
        for (what, line) in parse_cases {
            match self.bad_line(s, line).await {
                Ok(answers) => {
                    if answers.len() > 1 {
                        storms.push(format!("{what} got {} answers", answers.len()));
                    }
                    match answers.first() {
                        Some(r) if r.id.is_none() && error_of(r) == Some(ErrorCode::ParseError) => {
                        }
                        Some(r) => problems.push(format!(
                            "{what} was answered with {}; expected error -32700 with id null",
                            show_response(r)
                        )),
                        None => problems.push(format!(
                            "{what} got no answer; expected error -32700 with id null"
                        )),
                    }
                }
                Err(why) => {
                    problems.push(format!("after {what}: {why}"));
                    fatal.get_or_insert(format!("{what}: {why}"));
                    break;
                }
            }
        }
        if problems.is_empty() {
            self.results.pass(
                JsonrpcParseError,
                "a non-JSON line and a non-UTF-8 line were each answered -32700 with id null",
                started,
            );
        } else {
            self.results
                .fail(JsonrpcParseError, problems.join("; "), started);
        }

        // -32600: JSON, but not a message.
        let started_invalid = Instant::now();
        let invalid_cases: [(&str, &str, Option<&str>); 6] = [
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
        if s.usable() && s.process().pid() == pid {
            for (what, line, id) in invalid_cases {
                let expected_id = id.map(RequestId::from);
                match self.bad_line(s, line.as_bytes()).await {
                    Ok(answers) => {
                        if answers.len() > 1 {
                            storms.push(format!(
                                "a message with {what} got {} answers",
                                answers.len()
                            ));
                        }
                        let shown = expected_id
                            .as_ref()
                            .map_or_else(|| "null".to_owned(), ToString::to_string);
                        match answers.first() {
                            Some(r) if r.id == expected_id && error_of(r) == Some(ErrorCode::InvalidRequest) => {}
                            Some(r) => problems.push(format!("a message with {what} ({line}) was answered with {}; expected error -32600 with id {shown}", show_response(r))),
                            None => problems.push(format!("a message with {what} ({line}) got no answer; expected error -32600 with id {shown}")),
                        }
                    }
                    Err(why) => {
                        problems.push(format!("after a message with {what}: {why}"));
                        fatal.get_or_insert(format!("a message with {what}: {why}"));
                        break;
                    }
                }
            }
            if problems.is_empty() {
                self.results.pass(
                    JsonrpcInvalidRequest,
                    "six kinds of invalid message were each answered -32600 with the right id",
                    started_invalid,
                );
            } else {
                self.results
                    .fail(JsonrpcInvalidRequest, problems.join("; "), started_invalid);
            }
        } else {
            self.results.skip(JsonrpcInvalidRequest, "not run: the plugin did not survive the -32700 lines (see jsonrpc.survives-bad-lines)");
        }

        // Batches.
        let started_batch = Instant::now();
        if s.usable() && s.process().pid() == pid {
            let line = br#"[{"jsonrpc":"2.0","id":"conformance-batch-1","method":"ping"},{"jsonrpc":"2.0","id":"conformance-batch-2","method":"ping"}]"#;
            match self.bad_line(s, line).await {
                Ok(answers) => {
                    let executed = answers.iter().any(|r| {
                        r.id.as_ref()
                            .is_some_and(|id| id.to_string().contains("conformance-batch"))
                    });
                    let rejections = answers
                        .iter()
                        .filter(|r| {
                            r.id.is_none() && error_of(r) == Some(ErrorCode::InvalidRequest)
                        })
                        .count();
                    if !executed && rejections == 1 && answers.len() == 1 {
                        self.results.pass(
                            JsonrpcBatchRejected,
                            "a batch of two pings was answered with one -32600, id null",
                            started_batch,
                        );
                    } else {
                        let shown: Vec<String> = answers.iter().map(show_response).collect();
                        let what = if executed {
                            "executed the batch"
                        } else {
                            "did not answer it with exactly one -32600"
                        };
                        self.results.fail(
                            JsonrpcBatchRejected,
                            format!(
                                "a batch of two pings: the plugin {what}; it sent {}. Batches are not part of this protocol: answer an array with one -32600, id null",
                                if shown.is_empty() { "nothing".to_owned() } else { shown.join(", ") }
                            ),
                            started_batch,
                        );
                    }
                }
                Err(why) => {
                    self.results.fail(
                        JsonrpcBatchRejected,
                        format!("after a batch: {why}"),
                        started_batch,
                    );
                    fatal.get_or_insert(format!("a batch: {why}"));
                }
            }
        } else {
            self.results.skip(JsonrpcBatchRejected, "not run: the plugin did not survive the earlier bad lines (see jsonrpc.survives-bad-lines)");
        }

        if storms.is_empty() {
            self.results.pass(
                JsonrpcNoErrorStorm,
                "each bad line got at most one answer",
                started,
            );
        } else {
            self.results.fail(
                JsonrpcNoErrorStorm,
                format!("{}; answer a bad line once", storms.join("; ")),
                started,
            );
        }

        let survived = fatal.is_none() && s.usable() && s.process().pid() == pid;
        if survived {
            self.results.pass(
                JsonrpcSurvivesBadLines,
                "still answering after nine bad lines",
                started,
            );
        } else {
            let why = fatal.unwrap_or_else(|| "the plugin stopped".to_owned());
            self.results.fail(
                JsonrpcSurvivesBadLines,
                format!("{why}; one bad line must never end the conversation (§2.3)"),
                started,
            );
        }
    }

    async fn oversized_line(&mut self, s: &mut Session) {
        let started = Instant::now();
        let limit = self.options.max_message_bytes;
        let id = "conformance-oversized";
        let line = Self::padded_ping(id, limit + 4096);
        s.expect_answer(RequestId::from(id), "ping");
        let mark = s.mark();
        if let Err(stall) = s.send_line(&line).await {
            self.results.fail(
                JsonrpcOversizedLine,
                s.explain(&stall, "the line to be written"),
                started,
            );
            return;
        }
        let barrier = s.barrier(self.timeout()).await;
        let processed = s.wait(&RequestId::from(id), Duration::ZERO).await.is_ok();
        let refusal = s.events_since(mark).iter().find_map(|e| match &e.kind {
            EventKind::Unsolicited(r) if r.id.is_none() => r.outcome.clone().err(),
            _ => None,
        });
        let size = line.len();
        match (barrier, processed, refusal) {
            (Ok(()), false, Some(e)) if e.code == ErrorCode::MessageTooLarge => self.results.pass(
                JsonrpcOversizedLine,
                format!("a {size}-byte line (limit {limit}) was answered -32006 and discarded"),
                started,
            ),
            (Ok(()), true, _) => self.results.fail(
                JsonrpcOversizedLine,
                format!("a {size}-byte `ping`, over the announced {limit}-byte limit, was processed; answer such a line -32006 (id null) and discard it without buffering it whole"),
                started,
            ),
            (Ok(()), false, Some(e)) => self.results.fail(
                JsonrpcOversizedLine,
                format!("a {size}-byte line was answered with {}; expected -32006", show_error(&e)),
                started,
            ),
            (Ok(()), false, None) => self.results.fail(
                JsonrpcOversizedLine,
                format!("a {size}-byte line (limit {limit}) got no answer; expected -32006 with id null"),
                started,
            ),
            (Err(stall), ..) => self.results.fail(
                JsonrpcOversizedLine,
                s.explain(&stall, &format!("the answer to a `ping` after a {size}-byte line")),
                started,
            ),
        }
    }

    // ----------------------------------------------------------------------------------
    // Shutdown

    async fn shutdown(&mut self, mut s: Session) {
        let started = Instant::now();
        match s.call("shutdown", json!({}), self.timeout()).await {
            Ok(Answer {
                outcome: Ok(result),
                ..
            }) if result.is_object() => self.results.pass(
                ShutdownAnswered,
                format!("answered in {}", seconds(started.elapsed())),
                started,
            ),
            Ok(answer) => self.results.fail(
                ShutdownAnswered,
                format!(
                    "`shutdown` was answered with {}; expected {{}}",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                ShutdownAnswered,
                s.explain(&stall, "the answer to `shutdown`"),
                started,
            ),
        }
        let started = Instant::now();
        self.eof_exit(&mut s, ShutdownExitOnEof, "after `shutdown`", started)
            .await;
    }

    /// Closes stdin and judges the exit: `check` for the exit itself, then leftovers.
    async fn eof_exit(&mut self, s: &mut Session, check: CheckId, when: &str, started: Instant) {
        s.close_stdin();
        let status = s.wait_exit(EOF_GRACE).await;
        let exited_alone = status.is_some();
        match status {
            Some(status) if status.success() => self.results.pass(
                check,
                format!(
                    "exited with status 0, {} after stdin closed",
                    seconds(started.elapsed())
                ),
                started,
            ),
            Some(status) => self.results.fail(
                check,
                format!(
                    "on stdin EOF {when} the plugin exited with {}; a clean stop is status 0{}",
                    describe_exit(status),
                    s.stderr_hint()
                ),
                started,
            ),
            None => {
                self.results.fail(
                    check,
                    format!("the plugin was still running {} after stdin EOF {when}; a plugin must exit when stdin closes", seconds(EOF_GRACE)),
                    started,
                );
                s.process().signal_group(Signal::SIGTERM);
                if s.wait_exit(SIGTERM_GRACE).await.is_none() {
                    s.process().signal_group(Signal::SIGKILL);
                    let _ = s.wait_exit(Duration::from_secs(1)).await;
                }
            }
        }
        if check == ShutdownExitOnEof {
            self.leftovers(s, exited_alone, started).await;
        }
        s.drain(Duration::from_millis(300)).await;
    }

    async fn leftovers(&mut self, s: &mut Session, exited_alone: bool, started: Instant) {
        if !exited_alone {
            self.results.skip(
                ShutdownNoLeftovers,
                "not judged: the suite had to signal the process group (see shutdown.exit-on-eof)",
            );
            return;
        }
        let deadline = Instant::now() + LEFTOVER_GRACE;
        let mut members = s.process().group_members();
        while !members.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            members = s.process().group_members();
        }
        if members.is_empty() {
            self.results
                .pass(ShutdownNoLeftovers, "the process group is empty", started);
        } else {
            let shown: Vec<String> = members
                .iter()
                .map(|m| format!("pid {} `{}`", m.pid, crate::traffic::cut(&m.command, 80)))
                .collect();
            self.results.fail(
                ShutdownNoLeftovers,
                format!(
                    "{} still running in the plugin's process group after it exited: {}. Stop helper processes before exiting (the suite has killed them)",
                    if members.len() == 1 { "1 process is" } else { "processes are" },
                    shown.join(", ")
                ),
                started,
            );
            s.process().signal_group(Signal::SIGKILL);
        }
    }

    // ==================================================================================
    // Other sessions

    async fn early_phase(&mut self) -> Result<(), RunError> {
        let mut s = self.spawn("early")?;
        let started = Instant::now();
        match s.call("ping", json!({}), self.timeout()).await {
            Ok(Answer {
                outcome: Ok(result),
                ..
            }) if result.is_object() => self.results.pass(
                HandshakePingBeforeInitialize,
                "answered {} before `initialize`",
                started,
            ),
            Ok(answer) => self.results.fail(
                HandshakePingBeforeInitialize,
                format!(
                    "`ping` before `initialize` was answered with {}; expected {{}}",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                HandshakePingBeforeInitialize,
                s.explain(&stall, "the answer to `ping` sent before `initialize`"),
                started,
            ),
        }
        if !s.usable() {
            s = self.spawn("early")?;
        }
        let started = Instant::now();
        let params = json!({"name": "conformance_probe", "arguments": {}, "context": {}});
        match s.call("tool/invoke", params, self.timeout()).await {
            Ok(Answer {
                outcome: Err(e), ..
            }) if e.code == ErrorCode::NotInitialized => self.results.pass(
                HandshakeNotInitialized,
                "`tool/invoke` before `initialize` was answered -32002",
                started,
            ),
            Ok(answer) => self.results.fail(
                HandshakeNotInitialized,
                format!("`tool/invoke` before `initialize` was answered with {}; expected error -32002 (not initialized)", show_outcome(&answer.outcome)),
                started,
            ),
            Err(stall) => self.results.fail(
                HandshakeNotInitialized,
                s.explain(&stall, "the answer to `tool/invoke` sent before `initialize`"),
                started,
            ),
        }
        if !s.usable() {
            s = self.spawn("early")?;
        }

        // `initialize` with unknown members everywhere.
        let started = Instant::now();
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
        s.expect_answer(id.clone(), "initialize");
        let answer = match s.send_line(line.to_string().as_bytes()).await {
            Ok(()) => {
                s.set_limit(self.options.max_message_bytes);
                s.wait(&id, self.options.handshake_timeout).await
            }
            Err(stall) => Err(stall),
        };
        let mut problems = Vec::new();
        let initialized = match answer {
            // Whether the result itself is well formed is handshake.initialize's concern.
            Ok(Answer { outcome: Ok(_), .. }) => true,
            Ok(answer) => {
                problems.push(format!(
                    "`initialize` with unknown members was answered with {}",
                    show_outcome(&answer.outcome)
                ));
                false
            }
            Err(stall) => {
                problems.push(s.explain(&stall, "the answer to `initialize` with unknown members"));
                false
            }
        };
        if initialized {
            let mut initialized_params = self.initialized.clone();
            initialized_params["futureMember"] = json!(true);
            let line = json!({"jsonrpc": "2.0", "method": "initialized", "params": initialized_params, "futureEnvelopeMember": 1});
            let sent = s.send_line(line.to_string().as_bytes()).await;
            s.set_initialized();
            let ping_id = RequestId::from("conformance-ping-unknown-fields");
            s.expect_answer(ping_id.clone(), "ping");
            let ping = json!({"jsonrpc": "2.0", "id": ping_id, "method": "ping", "params": {"futureMember": 1}, "futureEnvelopeMember": 2});
            let answer = match sent {
                Ok(()) => match s.send_line(ping.to_string().as_bytes()).await {
                    Ok(()) => s.wait(&ping_id, self.timeout()).await,
                    Err(stall) => Err(stall),
                },
                Err(stall) => Err(stall),
            };
            match answer {
                Ok(Answer { outcome: Ok(_), .. }) => {}
                Ok(answer) => problems.push(format!(
                    "after an `initialized` with unknown members, a `ping` with unknown members was answered with {}",
                    show_outcome(&answer.outcome)
                )),
                Err(stall) => problems.push(s.explain(&stall, "the answer to a `ping` with unknown members")),
            }
        }
        if problems.is_empty() {
            self.results.pass(
                HandshakeUnknownFields,
                "unknown members in the envelope, initialize params, host, limits, capabilities, initialized and ping params were ignored",
                started,
            );
        } else {
            self.results.fail(
                HandshakeUnknownFields,
                format!(
                    "{}; unknown members must be ignored everywhere (§4)",
                    problems.join("; ")
                ),
                started,
            );
        }

        // A second `initialize`.
        let started = Instant::now();
        if initialized && s.usable() {
            let params = self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]);
            match s.call("initialize", params, self.timeout()).await {
                Ok(Answer {
                    outcome: Err(e), ..
                }) if e.code == ErrorCode::AlreadyInitialized => {
                    match s.call("ping", json!({}), self.timeout()).await {
                        Ok(Answer { outcome: Ok(_), .. }) => self.results.pass(
                            HandshakeSecondInitialize,
                            "answered -32007; the session went on",
                            started,
                        ),
                        Ok(answer) => self.results.fail(
                            HandshakeSecondInitialize,
                            format!("answered -32007, but a `ping` after it was answered with {}", show_outcome(&answer.outcome)),
                            started,
                        ),
                        Err(stall) => self.results.fail(
                            HandshakeSecondInitialize,
                            format!("answered -32007, but then: {}", s.explain(&stall, "the answer to a `ping`")),
                            started,
                        ),
                    }
                }
                Ok(answer) => self.results.fail(
                    HandshakeSecondInitialize,
                    format!("a second `initialize` was answered with {}; expected error -32007 (already initialized)", show_outcome(&answer.outcome)),
                    started,
                ),
                Err(stall) => self.results.fail(
                    HandshakeSecondInitialize,
                    s.explain(&stall, "the answer to a second `initialize`"),
                    started,
                ),
            }
        } else {
            self.results.skip(
                HandshakeSecondInitialize,
                "not run: the first `initialize` of this session failed (see handshake.unknown-fields)",
            );
        }

        // EOF without `shutdown`.
        let started = Instant::now();
        if s.usable() {
            self.eof_exit(
                &mut s,
                ShutdownEofWithoutShutdown,
                "without `shutdown`",
                started,
            )
            .await;
        } else {
            let mut fresh = self.spawn("early/eof")?;
            if let Ok((_, Answer { outcome: Ok(_), .. })) = self
                .initialize(
                    &mut fresh,
                    self.initialize_params(&[outpost_protocol::PROTOCOL_VERSION]),
                )
                .await
            {
                let _ = fresh.notify("initialized", self.initialized.clone()).await;
                fresh.set_initialized();
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
        }
        Ok(())
    }

    async fn negotiation_phase(&mut self) -> Result<(), RunError> {
        let mut s = self.spawn("negotiation")?;
        let started = Instant::now();
        let params = self.initialize_params(&[FUTURE_VERSION, outpost_protocol::PROTOCOL_VERSION]);
        let mut initialized = false;
        match self.initialize(&mut s, params).await {
            Ok((_, Answer { outcome: Ok(result), .. })) => {
                let chosen = result.get("protocolVersion");
                if chosen.and_then(Value::as_str) == Some(outpost_protocol::PROTOCOL_VERSION) {
                    self.results.pass(
                        HandshakeVersionNegotiation,
                        "offered [\"999\", \"1\"]: chose \"1\"",
                        started,
                    );
                } else {
                    self.results.fail(
                        HandshakeVersionNegotiation,
                        format!(
                            "offered [\"999\", \"1\"], the plugin chose {}; pick the first offered version the plugin speaks",
                            chosen.map_or_else(|| "nothing".to_owned(), Value::to_string)
                        ),
                        started,
                    );
                }
                initialized = true;
            }
            Ok((_, Answer { outcome: Err(e), .. })) => self.results.fail(
                HandshakeVersionNegotiation,
                format!(
                    "offered [\"999\", \"1\"], the plugin answered {}; it speaks \"1\", so it must choose it",
                    show_error(&e)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                HandshakeVersionNegotiation,
                s.explain(&stall, "the answer to `initialize` offering [\"999\", \"1\"]"),
                started,
            ),
        }
        if initialized {
            let _ = s.notify("initialized", self.initialized.clone()).await;
            s.set_initialized();
            let _ = s.barrier(self.timeout()).await;
        }
        if !self.results.wants(ShutdownSigterm) {
            return Ok(());
        }
        if s.process().exit_status().is_some() {
            s = self.spawn("negotiation")?;
            let _ = s.settle(Duration::from_millis(200)).await;
        }
        let started = Instant::now();
        s.process().signal_group(Signal::SIGTERM);
        if let Some(status) = s.wait_exit(SIGTERM_GRACE).await {
            self.results.pass(
                ShutdownSigterm,
                format!(
                    "exited ({}) {} after SIGTERM",
                    describe_exit(status),
                    seconds(started.elapsed())
                ),
                started,
            );
        } else {
            self.results.fail(
                ShutdownSigterm,
                format!("still running {} after SIGTERM to its process group; the host then sends SIGKILL", seconds(SIGTERM_GRACE)),
                started,
            );
            s.process().signal_group(Signal::SIGKILL);
        }
        Ok(())
    }

    async fn unsupported_phase(&mut self) -> Result<(), RunError> {
        let mut s = self.spawn("unsupported")?;
        let started = Instant::now();
        let params = self.initialize_params(&[FUTURE_VERSION]);
        match self.initialize(&mut s, params).await {
            Ok((_, Answer { outcome: Err(e), .. })) if e.code == ErrorCode::UnsupportedVersion => {
                let data = e.data.clone().unwrap_or(Value::Null);
                let supported_ok = data
                    .get("supported")
                    .and_then(Value::as_array)
                    .is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_string));
                let requested_ok = data.get("requested") == Some(&json!([FUTURE_VERSION]));
                if supported_ok && requested_ok {
                    self.results.pass(
                        HandshakeUnsupportedVersion,
                        format!("offered [\"999\"]: answered -32004 with data {data}"),
                        started,
                    );
                } else {
                    self.results.fail(
                        HandshakeUnsupportedVersion,
                        format!(
                            "answered -32004, but with data {data}; expected {{\"supported\": [the plugin's versions], \"requested\": [\"999\"]}}"
                        ),
                        started,
                    );
                }
            }
            Ok((_, answer)) => self.results.fail(
                HandshakeUnsupportedVersion,
                format!(
                    "offered only [\"999\"], the plugin answered with {}; expected error -32004 (unsupported protocol version)",
                    show_outcome(&answer.outcome)
                ),
                started,
            ),
            Err(stall) => self.results.fail(
                HandshakeUnsupportedVersion,
                s.explain(&stall, "the answer to `initialize` offering only [\"999\"]"),
                started,
            ),
        }
        s.close_stdin();
        let _ = s.wait_exit(EOF_GRACE).await;
        s.drain(Duration::from_millis(200)).await;
        Ok(())
    }

    // ==================================================================================
    // Judged from every line of the run

    fn judge_stream(&mut self) {
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
            if examples.count == 0 {
                if self.handshake_done {
                    self.results.verdict(
                        check,
                        true,
                        format!("{lines} lines from the plugin, none at fault"),
                        None,
                    );
                } else {
                    self.results.skip(
                        check,
                        "not judged: the plugin did not complete the handshake",
                    );
                }
            } else {
                self.results.verdict(
                    check,
                    false,
                    format!("{} {what}", examples.summary(noun)),
                    None,
                );
            }
        }
    }
}

// ======================================================================================
// Helpers

/// Whether a `fixture/callHost` result is the expected one.
type Judge = dyn Fn(&Value) -> bool;

/// One call made against a registration.
#[derive(Clone, Debug)]
struct Probe {
    what: String,
    method: &'static str,
    params: Value,
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

/// The known hook event closest to `event`, for "did you mean" hints.
fn closest_hook(event: &str) -> Option<&'static str> {
    HOOK_EVENTS
        .iter()
        .map(|known| (strsim::jaro_winkler(event, known), *known))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

fn no_probes_reason(check: CheckId) -> &'static str {
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

fn unsolicited_since(s: &Session, mark: usize) -> Vec<String> {
    s.events_since(mark)
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Unsolicited(r) | EventKind::Duplicate(r) => Some(show_response(r)),
            _ => None,
        })
        .collect()
}

fn error_of(response: &outpost_protocol::Response) -> Option<ErrorCode> {
    response.outcome.as_ref().err().map(|e| e.code)
}

fn error_code(result: &Value) -> Option<i64> {
    result.get("error")?.get("code")?.as_i64()
}

fn id_type(id: &RequestId) -> &'static str {
    match id {
        RequestId::Number(_) => "a number",
        RequestId::String(_) => "a string",
    }
}

pub(crate) fn show_error(error: &ErrorObject) -> String {
    format!(
        "error {} ({}): {:?}",
        error.code.code(),
        error.code.name(),
        crate::traffic::cut(&error.message, 200)
    )
}

fn show_outcome(outcome: &Result<Value, ErrorObject>) -> String {
    match outcome {
        Ok(result) => {
            let text = result.to_string();
            format!("the result {}", crate::traffic::cut(&text, 200))
        }
        Err(e) => show_error(e),
    }
}

fn show_response(response: &outpost_protocol::Response) -> String {
    let id = response
        .id
        .as_ref()
        .map_or_else(|| "null".to_owned(), ToString::to_string);
    format!("{} (id {id})", show_outcome(&response.result()))
}

/// Where two JSON values first differ, for people.
fn first_difference(expected: &Value, got: &Value, path: &str) -> String {
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) if other == value => {}
                    Some(other) => return first_difference(value, other, &format!("{path}.{key}")),
                    None => return format!("{path}.{key} is missing"),
                }
            }
            if let Some(extra) = b.keys().find(|k| !a.contains_key(*k)) {
                return format!("{path}.{extra} was added");
            }
            format!("{path} differs")
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    return first_difference(x, y, &format!("{path}[{i}]"));
                }
            }
            format!("{path} differs")
        }
        _ => format!(
            "{path}: sent {}, got {}",
            crate::traffic::cut(&expected.to_string(), 120),
            crate::traffic::cut(&got.to_string(), 120)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_located() {
        let a = json!({"x": [1, {"y": "é"}], "z": 1});
        assert_eq!(
            first_difference(&a, &json!({"x": [1, {"y": "e"}], "z": 1}), "value"),
            "value.x[1].y: sent \"é\", got \"e\""
        );
        assert_eq!(
            first_difference(&a, &json!({"x": [1, {"y": "é"}]}), "value"),
            "value.z is missing"
        );
        assert_eq!(
            first_difference(&json!([1.5]), &json!([1]), "v"),
            "v[0]: sent 1.5, got 1"
        );
    }

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
