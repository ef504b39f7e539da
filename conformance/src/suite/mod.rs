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
//!
//! One module per check family holds its steps: [`stream`], [`handshake`] (with the
//! early, negotiation and unsupported sessions), [`jsonrpc`], [`calls`] (with the slow
//! call), [`shutdown`] and [`fixture`]. A step that judges one check returns its
//! [`Verdict`]; this module records it.

mod calls;
mod fixture;
mod handshake;
mod jsonrpc;
mod show;
mod shutdown;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_protocol::{Registration, RegistrationKind, RequestId};
use serde_json::{Value, json};

use crate::checks::CheckId::{
    self, CallsCancel, CallsCancelAnswered, CallsCommands, CallsConcurrency, CallsGatewayMethods,
    CallsHooks, CallsHttpRoutes, CallsLargeMessage, CallsNonAscii, CallsOperations, CallsPing,
    CallsServices, CallsSlowCall, CallsTools, CallsUnknownName, FixtureCallHost, FixtureCancel,
    FixtureConcurrency, FixtureEcho, FixtureLargeEcho, FixtureLog, FixtureProgress,
    JsonrpcBatchRejected, JsonrpcIdTypes, JsonrpcInvalidParams, JsonrpcInvalidRequest,
    JsonrpcMethodNotFound, JsonrpcNoErrorStorm, JsonrpcNotificationsUnanswered,
    JsonrpcOversizedLine, JsonrpcParamsShape, JsonrpcParseError, JsonrpcResponsesUnanswered,
    JsonrpcReusedId, JsonrpcSurvivesBadLines, ShutdownAnswered, ShutdownExitOnEof,
    ShutdownNoLeftovers, StreamStderrFlood, StreamTolerantReader,
};
use crate::plan::{IdSource, Options, Plan, RunError};
use crate::report::CheckResult;
use crate::session::{Answer, HostBehaviour, Session, Stall};
use crate::traffic::Shared;
use crate::verdict::{Results, Verdict};

use show::show_error;

/// `shutdownTimeoutMs` announced in `initialize` (the host's default).
const SHUTDOWN_TIMEOUT_MS: u64 = 3000;
/// `maxConcurrentRequests` announced in `initialize`.
const MAX_CONCURRENT: u32 = 16;
/// The share of the step timeout announced as `context.timeoutMs`, in percent.
const CALL_BUDGET_PERCENT: u128 = 80;

/// The steps of the main session, in order. Each step gets a live session: when a
/// step leaves the plugin dead or stuck, the next one starts a fresh plugin.
#[derive(Clone, Copy, Debug)]
enum MainStep {
    Ping,
    IdTypes,
    NonAscii,
    TolerantReader,
    MethodNotFound,
    InvalidParams,
    ParamsShape,
    /// One of the `calls.*` checks of registered names.
    Calls(CheckId),
    UnknownName,
    CancelAnswered,
    /// The checks that need a call in flight.
    Slow,
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
    MainStep::TolerantReader,
    MainStep::MethodNotFound,
    MainStep::InvalidParams,
    MainStep::ParamsShape,
    MainStep::Calls(CallsTools),
    MainStep::Calls(CallsHooks),
    MainStep::Calls(CallsCommands),
    MainStep::Calls(CallsGatewayMethods),
    MainStep::Calls(CallsHttpRoutes),
    MainStep::Calls(CallsServices),
    MainStep::Calls(CallsOperations),
    MainStep::UnknownName,
    MainStep::CancelAnswered,
    MainStep::Slow,
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
            Self::TolerantReader => vec![StreamTolerantReader],
            Self::MethodNotFound => vec![JsonrpcMethodNotFound],
            Self::InvalidParams => vec![JsonrpcInvalidParams],
            Self::ParamsShape => vec![JsonrpcParamsShape],
            Self::Calls(id) | Self::Fixture(id) => vec![id],
            Self::UnknownName => vec![CallsUnknownName],
            Self::CancelAnswered => vec![CallsCancelAnswered],
            Self::Slow => vec![
                CallsSlowCall,
                CallsConcurrency,
                CallsCancel,
                JsonrpcReusedId,
            ],
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

/// What the runner learned about the plugin, for the report.
#[derive(Clone, Debug)]
pub(crate) struct Learned {
    pub(crate) plugin_id: Option<String>,
    pub(crate) id_source: IdSource,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) fixture: bool,
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
    /// The registrations the suite accepted, for the calls steps.
    accepted: Vec<Registration>,
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
            accepted: Vec::new(),
            initialized: json!({"accepted": [], "rejected": []}),
            handshake_done: false,
            restart_failure: None,
        }
    }

    pub(crate) fn finish(self) -> (Vec<CheckResult>, Learned) {
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

    fn spawn(&self, label: &'static str) -> Result<Session, RunError> {
        let host = HostBehaviour {
            config: self.plan.config.clone(),
        };
        Session::spawn(
            &self.shared,
            label,
            &self.plan.launch,
            &self.plugin_id,
            host,
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

    /// The accepted registrations of one kind.
    fn accepted(&self, kind: RegistrationKind) -> impl Iterator<Item = &Registration> {
        self.accepted.iter().filter(move |r| r.kind() == kind)
    }

    pub(crate) async fn run(&mut self) -> Result<(), RunError> {
        self.main_phase().await?;
        if self.handshake_done {
            self.other_phases().await?;
        } else {
            let reason = "not run: the plugin did not complete the handshake (see handshake.initialize or stream.unbuffered)";
            for step in MAIN_STEPS {
                self.results.skip_all(&step.checks(), reason);
            }
            self.skip_other_phases(reason);
        }
        self.judge_stream();
        Ok(())
    }

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
            if let Some(reason) = self.unrunnable(step) {
                self.results.skip_all(&checks, &reason);
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
            let started = Instant::now();
            let verdict: Verdict = match step {
                MainStep::Ping => self.ping(s).await,
                MainStep::IdTypes => self.id_types(s).await,
                MainStep::NonAscii => self.non_ascii(s).await,
                MainStep::TolerantReader => self.tolerant_reader(s).await,
                MainStep::MethodNotFound => self.method_not_found(s).await,
                MainStep::InvalidParams => self.invalid_params(s).await,
                MainStep::ParamsShape => self.params_shape(s).await,
                MainStep::Calls(check) => self.registration_calls(s, check).await,
                MainStep::UnknownName => self.unknown_name(s).await,
                MainStep::CancelAnswered => self.cancel_answered(s).await,
                MainStep::Fixture(check) => self.fixture_step(s, check).await,
                MainStep::LargeMessage => self.large_message(s).await,
                MainStep::NotificationsUnanswered => self.notifications_unanswered(s).await,
                MainStep::ResponsesUnanswered => self.responses_unanswered(s).await,
                MainStep::OversizedLine => self.oversized_line(s).await,
                // These judge several checks and record each themselves.
                MainStep::Slow => {
                    self.slow_call_checks(s).await;
                    continue;
                }
                MainStep::BadLines => {
                    self.bad_lines(s).await;
                    continue;
                }
                MainStep::Shutdown => {
                    if let Some(s) = slot.take() {
                        self.shutdown(s).await;
                    }
                    continue;
                }
            };
            self.results.record(checks[0], verdict, Some(started));
        }
        Ok(())
    }

    /// Why `step` cannot run on this plugin, judged before any process is started for
    /// it; `None` when it can.
    fn unrunnable(&mut self, step: MainStep) -> Option<String> {
        match step {
            MainStep::Fixture(_) if !self.fixture => {
                Some("the plugin does not declare capabilities.fixture (§13)".to_owned())
            }
            MainStep::Calls(check) if self.probes(check).is_empty() => {
                Some(calls::no_probes_reason(check).to_owned())
            }
            MainStep::Slow => match self.slow_call() {
                Ok(_) => None,
                Err(reason) => {
                    self.results.record(
                        CallsSlowCall,
                        Err(crate::verdict::fail(format!(
                            "concurrency and cancellation were not verified: {reason}"
                        ))),
                        None,
                    );
                    Some(format!("not run: {reason} (see calls.slow-call)"))
                }
            },
            _ => None,
        }
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
        Ok(s)
    }
}
