//! One plugin's life: spawn, handshake, supervise, stop, restart.
//!
//! # Theory of operation
//!
//! Each plugin has one runner task. It starts an *incarnation* (a process and its
//! connection), supervises it until it ends, then decides what comes next:
//!
//! ```text
//!            +-----------+  ready   +-------+
//!   start -->| starting  |--------->| ready |
//!            +-----------+          +-------+
//!              |  exit, timeout,       | exit, unresponsive,
//!              |  bad answer           | stdout closed
//!              v                       v
//!         crash: RestartHistory::record --> restarting --(backoff)--> starting
//!                        |
//!                        +--> failed  (too many crashes, exit 78, wrong version or id)
//!
//!   an order at any point: stop -> the stop escalation, then stopped;
//!   restart (or start, when not running) -> starting with a fresh crash history;
//!   retire (a reload removed or replaced it) -> the stop escalation, then the runner ends
//! ```
//!
//! Every wait races the process's exit and the runner's orders, so a plugin that dies or
//! an operator who stops it is noticed at once, whatever step the runner is in.
//!
//! Callers never talk to the runner: they read [`Conn`] (a watch) to find the current
//! connection, or why there is none. The runner sets it to `Down` *before* a
//! connection is aborted, so a new call never picks a dying connection.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use outpost_protocol::methods::{
    EmptyObject, HostCapabilities, InitializeParams, InitializeResult, Initialized,
    InitializedParams, Limits, Ping, RejectedRegistration, ServiceParams, ServiceStart,
    ServiceStop, Shutdown,
};
use outpost_protocol::peer::{self, CallError, CallOptions, Peer, PeerConfig};
use outpost_protocol::{ErrorCode, LEGACY_HOOKS, RegistrationKind, parse_registrations};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::host::{self, HostContext};
use super::os::{Child, ExitDescription, ProcessGroup, STEPS, SpawnRequest, Spawned};
use super::plugin::{Conn, Control, Down, Live, PluginRuntime, STDERR_TAIL_IN_REPORTS};
use super::reason::{Exit, ExitCause, Reason};
use super::registry::{Conversation, PluginState, Registrant};
use super::restart::{Decision, ExitKind, RestartHistory};
use super::shared::Shared;
use super::stderr;
use crate::policy::{HealthPolicy, SupervisionPolicy};
use crate::shown::for_log;

/// Environment variables passed through from the supervisor when set: named one by
/// one (no `LC_*` wildcard: any name can start with `LC_`).
const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_COLLATE",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "TMPDIR",
];

/// How long to wait for the last stderr lines after an exit: a helper the plugin left
/// behind may hold the pipe open.
const STDERR_SETTLE: Duration = Duration::from_millis(250);

/// After stdout closes, how long the process has to exit on its own.
const STDOUT_CLOSED_GRACE: Duration = Duration::from_secs(1);

/// Rejected registrations logged one by one at a handshake; the rest are counted.
const LOGGED_REJECTIONS: usize = 20;

/// Rejected registrations whose reason `initialized` spells out; the rest carry a
/// short one, so the host's notice is never much larger than the plugin's own
/// registrations (which fit its line limit).
const EXPLAINED_REJECTIONS: usize = 100;

/// Runs one plugin until it is retired or the supervisor drops its orders channel.
pub(crate) async fn run(
    shared: Weak<Shared>,
    runtime: Arc<PluginRuntime>,
    mut orders: mpsc::Receiver<Control>,
) {
    let mut runner = Runner {
        shared,
        runtime,
        history: RestartHistory::default(),
        after_crash: false,
    };
    let mut next = Next::Start;
    loop {
        next = match next {
            Next::Start => runner.start_and_supervise(&mut orders).await,
            Next::Crashed { report, ran_for } => {
                runner.after_crash(report, ran_for, &mut orders).await
            }
            Next::Failed(reason) => {
                tracing::debug!(plugin = %runner.runtime.id(), "failed: {}", for_log(&reason));
                runner.set_down(PluginState::Failed, reason, None);
                Next::Idle
            }
            Next::Idle => runner.idle(&mut orders).await,
            Next::Exit => return,
        };
    }
}

enum Next {
    Start,
    Crashed {
        report: Arc<Exit>,
        ran_for: Duration,
    },
    Failed(Reason),
    /// Failed or stopped: waiting for an order.
    Idle,
    Exit,
}

struct Runner {
    shared: Weak<Shared>,
    runtime: Arc<PluginRuntime>,
    history: RestartHistory,
    /// The next start replaces a process that crashed (it counts as a restart).
    after_crash: bool,
}

/// Why an incarnation did not get ready.
enum StartFailure {
    Crash(Arc<Exit>),
    Permanent(Reason),
    /// An order arrived meanwhile; the process was stopped.
    Ordered(Option<Control>),
}

/// How the supervision of a ready incarnation ended.
enum End {
    Exited(Arc<Exit>),
    Ordered(Option<Control>),
}

impl Runner {
    fn id(&self) -> &str {
        self.runtime.id()
    }

    fn policy(&self) -> &SupervisionPolicy {
        &self.runtime.spec.launch.policy
    }

    fn set_down(&self, state: PluginState, reason: Reason, retry_at: Option<Instant>) {
        if let Some(shared) = self.shared.upgrade() {
            shared
                .registry
                .set_state(self.id(), state, Some(reason.clone()));
        }
        self.runtime.conn.send_replace(Conn::Down(Down {
            state,
            reason,
            retry_at,
        }));
    }

    /// Carries out an order that arrived while the plugin was not running (any more).
    fn obey(&mut self, order: Option<Control>) -> Next {
        self.after_crash = false;
        match order {
            Some(Control::Stop(reply)) => {
                self.set_down(PluginState::Stopped, Reason::StopRequested, None);
                let _ = reply.send(());
                Next::Idle
            }
            Some(Control::Start(reply) | Control::Restart(reply)) => {
                self.history.clear();
                // Starting before the reply: whoever ordered it sees it so at once.
                self.set_down(PluginState::Starting, Reason::Starting, None);
                let _ = reply.send(());
                Next::Start
            }
            Some(Control::Retire(reason, reply)) => {
                self.set_down(PluginState::Stopped, reason, None);
                let _ = reply.send(());
                Next::Exit
            }
            None => {
                self.set_down(PluginState::Stopped, Reason::Shutdown, None);
                Next::Exit
            }
        }
    }

    async fn idle(&mut self, orders: &mut mpsc::Receiver<Control>) -> Next {
        let order = orders.recv().await;
        self.obey(order)
    }

    async fn start_and_supervise(&mut self, orders: &mut mpsc::Receiver<Control>) -> Next {
        self.set_down(PluginState::Starting, Reason::Starting, None);
        let Some(shared) = self.shared.upgrade() else {
            return Next::Exit;
        };
        let restart = std::mem::take(&mut self.after_crash);
        let mut incarnation = match start(&shared, &self.runtime, restart, orders).await {
            Ok(incarnation) => incarnation,
            Err(StartFailure::Crash(report)) => {
                return Next::Crashed {
                    report,
                    ran_for: Duration::ZERO,
                };
            }
            Err(StartFailure::Permanent(reason)) => return Next::Failed(reason),
            Err(StartFailure::Ordered(order)) => return self.obey(order),
        };
        drop(shared);
        let ready_at = Instant::now();
        if let Some(shared) = self.shared.upgrade() {
            shared
                .registry
                .set_state(self.id(), PluginState::Ready, None);
        }
        self.runtime.conn.send_replace(Conn::Up(incarnation.live()));
        tracing::trace!(target: STEPS, step = "ready");
        tracing::debug!(plugin = %self.id(), pid = incarnation.group.id(), "ready");
        match incarnation.supervise(orders).await {
            End::Exited(report) => Next::Crashed {
                report,
                ran_for: ready_at.elapsed(),
            },
            End::Ordered(order) => self.obey(order),
        }
    }

    async fn after_crash(
        &mut self,
        report: Arc<Exit>,
        ran_for: Duration,
        orders: &mut mpsc::Receiver<Control>,
    ) -> Next {
        let policy = self.policy().restart.clone();
        let kind = if report.status.exit_code == Some(outpost_protocol::EXIT_PERMANENT_FAILURE) {
            ExitKind::Permanent
        } else {
            ExitKind::Crash
        };
        let jitter = fastrand::f64().mul_add(2.0, -1.0);
        let exit = Exit::clone(&report);
        match self
            .history
            .record(&policy, kind, Instant::now(), ran_for, jitter)
        {
            Decision::RestartAfter(delay) => {
                tracing::debug!(plugin = %self.id(), stderr_tail = ?report.stderr_tail, "{report}");
                let reason = Reason::Restarting {
                    exit,
                    backoff_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    crashes: u32::try_from(self.history.recent_crashes()).unwrap_or(u32::MAX),
                    max_crashes: policy.max_crashes,
                    window_ms: policy.window_ms,
                };
                self.set_down(
                    PluginState::Restarting,
                    reason,
                    Some(Instant::now() + delay),
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {
                        self.after_crash = true;
                        Next::Start
                    }
                    order = orders.recv() => self.obey(order),
                }
            }
            Decision::GiveUp { crashes } => Next::Failed(Reason::CrashLoop {
                crashes: u32::try_from(crashes).unwrap_or(u32::MAX),
                window_ms: policy.window_ms,
                last: exit,
            }),
            Decision::Permanent if kind == ExitKind::Permanent => {
                Next::Failed(Reason::PermanentFailure { exit })
            }
            Decision::Permanent => Next::Failed(Reason::RestartsDisabled { exit }),
        }
    }
}

/// A running process and its connection.
struct Incarnation {
    shared: Weak<Shared>,
    runtime: Arc<PluginRuntime>,
    child: Child,
    group: ProcessGroup,
    peer: Peer,
    stderr_task: Option<JoinHandle<()>>,
    host_task: JoinHandle<()>,
    exit: watch::Sender<Option<Arc<Exit>>>,
    services: Vec<String>,
}

impl Drop for Incarnation {
    fn drop(&mut self) {
        self.host_task.abort();
        // `group` kills whatever is left on its own drop unless the stop escalation
        // already swept it.
    }
}

async fn start(
    shared: &Arc<Shared>,
    runtime: &Arc<PluginRuntime>,
    restart: bool,
    orders: &mut mpsc::Receiver<Control>,
) -> Result<Incarnation, StartFailure> {
    let spec = &runtime.spec;
    let launch = &spec.launch;
    let limits = &launch.policy.limits;
    tracing::trace!(target: STEPS, step = "runner started");
    runtime.tail.clear();
    let request = SpawnRequest {
        plugin: spec.id.clone(),
        program: launch.program.clone(),
        args: launch.args.clone(),
        cwd: launch.root.clone(),
        env: environment(&spec.id, &launch.env_passthrough, &launch.env_set),
        open_files: limits.open_files,
        memory_bytes: limits.memory_mib.map(|mib| mib.saturating_mul(1024 * 1024)),
        sandbox: launch.sandbox.clone(),
    };
    tracing::trace!(target: STEPS, step = "environment built");
    let Spawned {
        mut child,
        pid,
        isolation,
        made_ahead,
    } = match shared.spawner.spawn(request).await {
        Ok(spawned) => spawned,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(StartFailure::Permanent(Reason::CannotStart {
                detail: e.to_string(),
            }));
        }
        Err(e) => {
            return Err(StartFailure::Crash(Arc::new(Exit {
                cause: ExitCause::SpawnFailed {
                    program: launch.program.clone(),
                    detail: e.to_string(),
                },
                status: ExitDescription {
                    text: "not started".into(),
                    exit_code: None,
                    signal: None,
                },
                stderr_tail: Vec::new(),
            })));
        }
    };
    tracing::trace!(target: STEPS, step = "back from the spawner");
    // The group is led by the process the supervisor reaps; `pid` is the plugin's own.
    let group = ProcessGroup::new(child.id());
    shared.registry.set_process(&spec.id, Some(pid), restart);
    tracing::debug!(plugin = %spec.id, ?isolation, made_ahead, "isolation");
    *runtime
        .isolation
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(isolation);
    let Some((stdin, stdout, stderr)) = child.take_streams() else {
        unreachable!("all three streams are piped");
    };
    let plugin: Arc<str> = Arc::from(spec.id.as_str());
    let stderr_task = stderr::drain(plugin.clone(), stderr, runtime.tail.clone());
    let (peer, incoming) = peer::connect(
        stdout,
        stdin,
        PeerConfig {
            name: format!("plugin `{}`", spec.id),
            max_message_bytes: usize::try_from(limits.max_message_bytes).unwrap_or(usize::MAX),
            stats: runtime.metrics.traffic.clone(),
            ..PeerConfig::default()
        },
    );
    let initialized = Arc::new(AtomicBool::new(false));
    let host_task = tokio::spawn(host::serve(
        HostContext {
            shared: Arc::downgrade(shared),
            plugin: plugin.clone(),
            config: spec.config.clone(),
            channels: spec.channels.clone(),
            host_methods: spec.host_methods.clone(),
            call_timeout: Duration::from_millis(launch.policy.timeouts.call_ms),
            initialized: initialized.clone(),
        },
        incoming,
    ));
    tracing::debug!(plugin = %plugin, pid, program = %launch.program.display(), "spawned");
    let mut incarnation = Incarnation {
        shared: Arc::downgrade(shared),
        runtime: runtime.clone(),
        child,
        group,
        peer,
        stderr_task: Some(stderr_task),
        host_task,
        exit: watch::channel(None).0,
        services: Vec::new(),
    };

    tracing::trace!(target: STEPS, step = "connected");
    let outcome = {
        let handshake = handshake(shared, runtime, incarnation.peer.clone(), &initialized);
        tokio::pin!(handshake);
        loop {
            tokio::select! {
                result = &mut handshake => break Ok(result),
                status = incarnation.child.wait() => break Err(status),
                order = orders.recv() => {
                    if let Some(Control::Start(reply)) = order {
                        // Already starting.
                        let _ = reply.send(());
                        continue;
                    }
                    let reason = stop_reason(order.as_ref());
                    incarnation.stop(reason).await;
                    return Err(StartFailure::Ordered(order));
                }
            }
        }
    };
    match outcome {
        Ok(Ok(services)) => {
            incarnation.services = services;
            Ok(incarnation)
        }
        Ok(Err(HandshakeError::Permanent(reason))) => {
            incarnation.kill(ExitCause::Stopped).await;
            Err(StartFailure::Permanent(reason))
        }
        Ok(Err(HandshakeError::Crash(cause))) => {
            Err(StartFailure::Crash(incarnation.kill(cause).await))
        }
        Err(status) => {
            let report = incarnation
                .finish(status, ExitCause::ExitedDuringHandshake, false)
                .await;
            Err(StartFailure::Crash(report))
        }
    }
}

/// What a plugin that is stopped because of `order` is told, and why it stops.
fn stop_reason(order: Option<&Control>) -> Reason {
    match order {
        Some(Control::Retire(reason, _)) => reason.clone(),
        Some(_) => Reason::StopRequested,
        None => Reason::Shutdown,
    }
}

enum HandshakeError {
    /// Restarting will not help: a version or id mismatch, a malformed answer.
    Permanent(Reason),
    /// Counted as a crash.
    Crash(ExitCause),
}

/// `initialize`, admission, `initialized`, service starts. Returns the started services.
async fn handshake(
    shared: &Arc<Shared>,
    runtime: &Arc<PluginRuntime>,
    peer: Peer,
    initialized: &AtomicBool,
) -> Result<Vec<String>, HandshakeError> {
    let spec = &runtime.spec;
    let policy = &spec.launch.policy;
    let offered: Vec<String> = outpost_protocol::SUPPORTED_VERSIONS
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    let params = InitializeParams {
        protocol_versions: offered.clone(),
        host: shared.host.clone(),
        plugin_id: spec.id.clone(),
        config: spec.config.clone(),
        channels: spec.channels.clone(),
        limits: Limits {
            max_message_bytes: policy.limits.max_message_bytes,
            max_concurrent_requests: policy.limits.max_concurrent_requests,
            shutdown_timeout_ms: Some(policy.stop.shutdown_ms),
        },
        capabilities: HostCapabilities {
            runtime: host::RUNTIME_METHODS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        },
        host_pid: Some(std::process::id()),
    };
    let timeout = Duration::from_millis(policy.timeouts.handshake_ms);
    let params = serde_json::to_value(params).expect("initialize params serialize");
    tracing::trace!(target: STEPS, step = "initialize built");
    let answer = match peer
        .call("initialize", Some(&params), CallOptions::timeout(timeout))
        .await
    {
        Ok(answer) => {
            tracing::trace!(target: STEPS, step = "initialize answered");
            answer
        }
        Err(CallError::Timeout(_)) => {
            return Err(HandshakeError::Crash(ExitCause::HandshakeTimeout {
                timeout_ms: policy.timeouts.handshake_ms,
                unreadable: None,
            }));
        }
        Err(CallError::Unreadable {
            problem,
            timeout: Some(_),
        }) => {
            return Err(HandshakeError::Crash(ExitCause::HandshakeTimeout {
                timeout_ms: policy.timeouts.handshake_ms,
                unreadable: Some(problem),
            }));
        }
        Err(CallError::Unreadable {
            problem,
            timeout: None,
        }) => {
            return Err(HandshakeError::Crash(ExitCause::HandshakeUnreadable {
                line: problem,
            }));
        }
        Err(CallError::Remote(error)) if error.code == ErrorCode::UnsupportedVersion => {
            let supported = error
                .data
                .as_ref()
                .and_then(|d| d.get("supported"))
                .cloned()
                .unwrap_or(Value::Null);
            return Err(HandshakeError::Permanent(Reason::VersionMismatch {
                offered,
                supported,
            }));
        }
        Err(CallError::Remote(error)) => {
            return Err(HandshakeError::Crash(ExitCause::HandshakeRefused {
                error: error.to_string(),
            }));
        }
        Err(e) => {
            return Err(HandshakeError::Crash(ExitCause::ConnectionLost {
                detail: e.to_string(),
            }));
        }
    };

    // Registrations are read one by one, so one bad entry is rejected alone.
    let mut answer = answer;
    let raw_registrations = match answer
        .as_object_mut()
        .and_then(|o| o.remove("registrations"))
    {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values,
        Some(_) => {
            return Err(HandshakeError::Permanent(Reason::BadHandshake {
                detail: "`registrations` is not an array".into(),
            }));
        }
    };
    let result: InitializeResult = serde_json::from_value(answer).map_err(|e| {
        HandshakeError::Permanent(Reason::BadHandshake {
            detail: e.to_string(),
        })
    })?;
    if !offered.contains(&result.protocol_version) {
        return Err(HandshakeError::Permanent(Reason::UnofferedVersion {
            chosen: result.protocol_version,
            offered,
        }));
    }
    if result.plugin.id != spec.id {
        return Err(HandshakeError::Permanent(Reason::WrongId {
            expected: spec.id.clone(),
            answered: result.plugin.id,
        }));
    }

    let cap = policy.limits.max_registrations;
    if raw_registrations.len() > cap as usize {
        return Err(HandshakeError::Permanent(Reason::BadHandshake {
            detail: format!(
                "it made {} registrations, over the limit of {cap} per plugin; register fewer, or raise outpost.plugins.{}.limits.maxRegistrations",
                raw_registrations.len(),
                spec.id
            ),
        }));
    }
    // Off the async workers: checking thousands of registrations (tool schemas are
    // compiled) must not hold up other plugins' calls.
    let admission = {
        let (shared, runtime) = (shared.clone(), runtime.clone());
        tokio::task::spawn_blocking(move || {
            let spec = &runtime.spec;
            shared.registry.admit(
                Registrant {
                    plugin: &spec.id,
                    declarations: &spec.declarations,
                    allow_prompt_injection: spec.allow_prompt_injection,
                    allow_catch_all_route: spec.allow_catch_all_route,
                    conversation: Conversation::of(spec),
                    schemas: &shared.schemas,
                },
                parse_registrations(&raw_registrations),
            )
        })
        .await
        .expect("admission does not panic")
    };
    tracing::trace!(target: STEPS, step = "registrations admitted");
    for rejected in admission.rejected.iter().take(LOGGED_REJECTIONS) {
        let what = match (&rejected.kind, &rejected.key) {
            (Some(kind), Some(key)) => format!("{kind} `{key}`"),
            _ => format!("registration {}", rejected.index),
        };
        tracing::warn!(plugin = %spec.id, code = %rejected.code, "{} rejected: {}", for_log(what), for_log(&rejected.reason));
    }
    if let Some(more) = admission
        .rejected
        .len()
        .checked_sub(LOGGED_REJECTIONS)
        .filter(|n| *n > 0)
    {
        tracing::warn!(
            plugin = %spec.id,
            "{more} more registrations rejected; `outpost plugins inspect {}` lists them all",
            spec.id
        );
    }
    for accepted in &admission.accepted {
        if accepted.kind == RegistrationKind::Hook && LEGACY_HOOKS.contains(&accepted.key.as_str())
        {
            tracing::warn!(plugin = %spec.id, "legacy warning: hook `{}` is deprecated; prefer before_model_resolve or before_prompt_build", accepted.key);
        }
    }
    if !(admission.added.is_empty() && admission.removed.is_empty() && admission.changed.is_empty())
    {
        tracing::debug!(
            plugin = %spec.id,
            added = ?admission.added, removed = ?admission.removed, changed = ?admission.changed,
            "registrations changed"
        );
    }
    let notice = InitializedParams {
        accepted: admission.accepted,
        rejected: summarised(admission.rejected),
    };
    // The host's lines obey the plugin's limit too.
    let size = serde_json::to_vec(&notice).map_or(0, |bytes| bytes.len());
    if size as u64 + 64 > policy.limits.max_message_bytes {
        return Err(HandshakeError::Permanent(Reason::BadHandshake {
            detail: format!(
                "acknowledging its registrations takes a {size}-byte `initialized`, over its limits.maxMessageBytes of {}; register fewer, or raise the limit",
                policy.limits.max_message_bytes
            ),
        }));
    }
    // Before the notification leaves: a plugin may send a request the moment it reads
    // `initialized` (docs/protocol.md §5.3), and that request must find the host ready.
    initialized.store(true, Ordering::SeqCst);
    peer.notify::<Initialized>(&notice).await.map_err(|e| {
        HandshakeError::Crash(ExitCause::ConnectionLost {
            detail: e.to_string(),
        })
    })?;

    tracing::trace!(target: STEPS, step = "initialized sent");
    let call_timeout = Duration::from_millis(policy.timeouts.call_ms);
    for service in &admission.services {
        let params = ServiceParams {
            id: service.clone(),
        };
        if let Err(e) = peer
            .request::<ServiceStart>(&params, CallOptions::timeout(call_timeout))
            .await
        {
            tracing::warn!(plugin = %spec.id, service = %for_log(service), "service did not start: {}", for_log(e));
        }
    }
    Ok(admission.services)
}

/// `rejected` for `initialized`: past [`EXPLAINED_REJECTIONS`], each reason is only
/// its code. The registry keeps every reason for `outpost plugins inspect`.
fn summarised(mut rejected: Vec<RejectedRegistration>) -> Vec<RejectedRegistration> {
    for rejection in rejected.iter_mut().skip(EXPLAINED_REJECTIONS) {
        rejection.code.as_str().clone_into(&mut rejection.reason);
    }
    rejected
}

impl Incarnation {
    fn id(&self) -> &str {
        self.runtime.id()
    }

    fn policy(&self) -> &SupervisionPolicy {
        &self.runtime.spec.launch.policy
    }

    fn live(&self) -> Live {
        Live {
            peer: self.peer.clone(),
            exit: self.exit.subscribe(),
        }
    }

    async fn supervise(&mut self, orders: &mut mpsc::Receiver<Control>) -> End {
        let health = tokio::spawn(health(
            self.id().into(),
            self.peer.clone(),
            self.policy().health.clone(),
        ));
        let health_abort = health.abort_handle();
        tokio::pin!(health);
        let end = loop {
            tokio::select! {
                status = self.child.wait() => break End::Exited(self.finish(status, ExitCause::Crashed, false).await),
                Ok(cause) = &mut health => break End::Exited(self.kill(cause).await),
                reason = self.peer.closed() => {
                    // Usually the process is on its way out; give it a moment to say how.
                    break match tokio::time::timeout(STDOUT_CLOSED_GRACE, self.child.wait()).await {
                        Ok(status) => End::Exited(self.finish(status, ExitCause::Crashed, false).await),
                        Err(_) => End::Exited(self.kill(ExitCause::StreamClosed { detail: reason.to_string() }).await),
                    };
                }
                order = orders.recv() => {
                    if let Some(Control::Start(reply)) = order {
                        // Already running.
                        let _ = reply.send(());
                        continue;
                    }
                    self.stop(stop_reason(order.as_ref())).await;
                    break End::Ordered(order);
                }
            }
        };
        health_abort.abort();
        end
    }

    /// The stop escalation for a stop that was asked for: `service/stop` and
    /// `shutdown`, close stdin, SIGTERM to the group, SIGKILL to the group.
    async fn stop(&mut self, reason: Reason) -> Arc<Exit> {
        if let Some(shared) = self.shared.upgrade() {
            shared
                .registry
                .set_state(self.id(), PluginState::Stopping, Some(reason.clone()));
        }
        self.go_down(PluginState::Stopping, reason);
        let stop = self.policy().stop.clone();
        let deadline = Instant::now() + Duration::from_millis(stop.shutdown_ms);
        let peer = self.peer.clone();
        let services = self.services.clone();
        let ask = async move {
            for service in services.iter().rev() {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = peer
                    .request::<ServiceStop>(
                        &ServiceParams {
                            id: service.clone(),
                        },
                        CallOptions::timeout(left),
                    )
                    .await;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = peer
                .request::<Shutdown>(&EmptyObject {}, CallOptions::timeout(left))
                .await;
        };
        let early = tokio::select! {
            () = ask => None,
            status = self.child.wait() => Some(status),
        };
        let status = if let Some(status) = early {
            status
        } else {
            self.peer.close();
            self.escalate(
                Duration::from_millis(stop.eof_ms),
                Duration::from_millis(stop.term_ms),
            )
            .await
        };
        self.finish(status, ExitCause::Stopped, true).await
    }

    /// Ends a process that is hung or misbehaving: close stdin, SIGTERM, SIGKILL.
    async fn kill(&mut self, cause: ExitCause) -> Arc<Exit> {
        self.go_down(
            PluginState::Restarting,
            Reason::Exiting {
                cause: cause.clone(),
            },
        );
        let term = Duration::from_millis(self.policy().stop.term_ms);
        self.peer.close();
        let status = self.escalate(Duration::ZERO, term).await;
        self.finish(status, cause, false).await
    }

    /// Waits `grace` for an exit, then SIGTERM and `term`, then SIGKILL.
    async fn escalate(
        &mut self,
        grace: Duration,
        term: Duration,
    ) -> std::io::Result<std::process::ExitStatus> {
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            return status;
        }
        self.group.signal(nix::sys::signal::Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(term, self.child.wait()).await {
            return status;
        }
        tracing::warn!(plugin = %self.id(), "did not exit {} ms after SIGTERM; sending SIGKILL to its process group", term.as_millis());
        self.group.signal(nix::sys::signal::Signal::SIGKILL);
        self.child.wait().await
    }

    /// After the process was reaped: sweep its group, publish how it ended, fail what
    /// was in flight.
    async fn finish(
        &mut self,
        status: std::io::Result<std::process::ExitStatus>,
        cause: ExitCause,
        requested: bool,
    ) -> Arc<Exit> {
        self.go_down(
            if requested {
                PluginState::Stopping
            } else {
                PluginState::Restarting
            },
            Reason::Exiting {
                cause: cause.clone(),
            },
        );
        self.group.sweep();
        if let Some(shared) = self.shared.upgrade() {
            shared.registry.set_process(self.id(), None, false);
        }
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(STDERR_SETTLE, task).await;
        }
        let status = match status {
            Ok(status) => ExitDescription::from_status(status),
            Err(e) => ExitDescription {
                text: format!("exit status unknown ({e})"),
                exit_code: None,
                signal: None,
            },
        };
        let report = Arc::new(Exit {
            cause,
            status,
            stderr_tail: self.runtime.tail.last(STDERR_TAIL_IN_REPORTS),
        });
        self.exit.send_replace(Some(report.clone()));
        self.peer.abort(format!("plugin `{}` {report}", self.id()));
        self.host_task.abort();
        report
    }

    /// Stops routing new calls here (calls already sent are answered or failed later).
    fn go_down(&self, state: PluginState, reason: Reason) {
        self.runtime.conn.send_if_modified(|conn| {
            if matches!(conn, Conn::Up(_)) {
                *conn = Conn::Down(Down {
                    state,
                    reason,
                    retry_at: None,
                });
                true
            } else {
                false
            }
        });
    }
}

/// Pings while the plugin is ready; returns why it is unresponsive, or never.
async fn health(plugin: Arc<str>, peer: Peer, policy: HealthPolicy) -> ExitCause {
    if policy.interval_ms == 0 || policy.misses == 0 {
        return std::future::pending().await;
    }
    let interval = Duration::from_millis(policy.interval_ms);
    let timeout = Duration::from_millis(policy.timeout_ms);
    let mut misses = 0;
    loop {
        tokio::time::sleep(interval).await;
        match peer
            .request::<Ping>(&EmptyObject {}, CallOptions::timeout(timeout))
            .await
        {
            Ok(_) => misses = 0,
            Err(CallError::Closed(_) | CallError::NotSent(_)) => {
                return std::future::pending().await;
            }
            Err(e) => {
                misses += 1;
                tracing::warn!(plugin = %plugin, misses, "ping unanswered: {}", for_log(e));
                if misses >= policy.misses {
                    return ExitCause::Unresponsive {
                        misses,
                        timeout_ms: policy.timeout_ms,
                    };
                }
            }
        }
    }
}

/// The plugin's whole environment (docs/protocol.md §3.2).
fn environment(
    plugin: &str,
    passthrough: &[String],
    set: &std::collections::BTreeMap<String, String>,
) -> Vec<(OsString, OsString)> {
    environment_from(std::env::vars_os(), plugin, passthrough, set)
}

/// [`environment`], taking the supervisor's variables from `vars`.
fn environment_from(
    vars: impl Iterator<Item = (OsString, OsString)>,
    plugin: &str,
    passthrough: &[String],
    set: &std::collections::BTreeMap<String, String>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            ENV_ALLOWLIST.contains(&name.as_ref())
                || passthrough.iter().any(|granted| *granted == name)
        })
        .collect();
    env.extend(set.iter().map(|(k, v)| (k.into(), v.into())));
    env.push((
        outpost_protocol::ENV_PROTOCOL.into(),
        outpost_protocol::PROTOCOL_VERSION.into(),
    ));
    env.push((outpost_protocol::ENV_PLUGIN_ID.into(), plugin.into()));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_scrubbed() {
        // Whatever the supervisor has, only the allowlist and grants pass.
        let set = [("ACME_MODE".to_owned(), "dev".to_owned())]
            .into_iter()
            .collect();
        let host = [
            ("PATH", "/usr/bin"),
            ("LC_ALL", "C.UTF-8"),
            ("LC_SECRET_TOKEN", "hunter2"),
            ("AWS_SECRET_ACCESS_KEY", "hunter3"),
            ("CARGO", "/usr/bin/cargo"),
        ]
        .map(|(name, value)| (OsString::from(name), OsString::from(value)));
        let env = environment_from(host.into_iter(), "notes", &["CARGO".to_owned()], &set);
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "PATH",
                "LC_ALL",
                "CARGO",
                "ACME_MODE",
                "OUTPOST_PROTOCOL",
                "OUTPOST_PLUGIN_ID"
            ]
        );
        let env = environment("notes", &["CARGO".to_owned()], &set);
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for name in &names {
            assert!(
                ENV_ALLOWLIST.contains(&name.as_str())
                    || [
                        "CARGO",
                        "ACME_MODE",
                        "OUTPOST_PROTOCOL",
                        "OUTPOST_PLUGIN_ID"
                    ]
                    .contains(&name.as_str()),
                "{name} leaked"
            );
        }
        assert!(names.contains(&"OUTPOST_PLUGIN_ID".to_owned()));
        assert!(names.contains(&"ACME_MODE".to_owned()));
    }
}
