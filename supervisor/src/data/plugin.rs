//! What the runner of one plugin shares with the callers routed to it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_protocol::peer::Peer;
use outpost_protocol::{ErrorCode, ErrorObject};
use serde_json::json;
use tokio::sync::{AcquireError, Semaphore, SemaphorePermit, mpsc, oneshot, watch};
use tokio::time::error::Elapsed;

use super::metrics::PluginMetrics;
use super::reason::{Exit, Reason};
use super::registry::PluginState;
use super::stderr::StderrTail;
use crate::isolation::Isolation;
use crate::spec::PluginSpec;

/// Stderr lines attached to `-32010` errors and crash logs.
pub(crate) const STDERR_TAIL_IN_REPORTS: usize = 20;

/// One supervised plugin, as seen by callers.
#[derive(Debug)]
pub(crate) struct PluginRuntime {
    pub(crate) spec: PluginSpec,
    pub(crate) tail: Arc<StderrTail>,
    pub(crate) gate: Gate,
    /// The current connection, or why there is none.
    pub(crate) conn: watch::Sender<Conn>,
    /// Orders for the runner.
    pub(crate) control: mpsc::Sender<Control>,
    /// What is measured about the plugin (shared with the runtime it replaced, if any).
    pub(crate) metrics: Arc<PluginMetrics>,
    /// How its current (or last) process is confined; set at each start.
    pub(crate) isolation: Mutex<Option<Isolation>>,
}

impl PluginRuntime {
    pub(crate) fn id(&self) -> &str {
        &self.spec.id
    }
}

/// Orders for a plugin's runner; each is answered when carried out.
#[derive(Debug)]
pub(crate) enum Control {
    /// Stop it (the stop escalation), and keep it stopped.
    Stop(oneshot::Sender<()>),
    /// Start it with a fresh crash history if it is stopped or failed; nothing if it
    /// runs.
    Start(oneshot::Sender<()>),
    /// Stop it if running, forget its crash history, start it again.
    Restart(oneshot::Sender<()>),
    /// Stop it for good (a reload removed or replaced it), then end the runner.
    Retire(Reason, oneshot::Sender<()>),
}

/// Whether calls can reach the plugin.
#[derive(Clone, Debug)]
pub(crate) enum Conn {
    /// Ready: calls go to this connection.
    Up(Live),
    /// Not ready.
    Down(Down),
}

/// A ready incarnation.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    pub(crate) peer: Peer,
    /// Set once when this incarnation's process has exited and been reaped.
    pub(crate) exit: watch::Receiver<Option<Arc<Exit>>>,
}

impl Live {
    /// How the process ended, waiting at most `bound` for it (the process may still be
    /// on its way out when its pipes close).
    pub(crate) async fn exit_report(&self, bound: Duration) -> Option<Arc<Exit>> {
        let mut exit = self.exit.clone();
        if let Ok(Ok(report)) = tokio::time::timeout(bound, exit.wait_for(Option::is_some)).await {
            return report.clone();
        }
        self.exit.borrow().clone()
    }
}

/// Why a plugin is not ready.
#[derive(Clone, Debug)]
pub(crate) struct Down {
    pub(crate) state: PluginState,
    pub(crate) reason: Reason,
    /// When it will be started again (restarting only).
    pub(crate) retry_at: Option<Instant>,
}

/// The per-plugin concurrency limit with a bounded queue.
///
/// Calls from other plugins (`host/callMethod` to a method this plugin registered) get
/// half of it, rounded down: at most half the slots (at least one, so that with a
/// single slot they still run, sharing it) and half the queue, whatever they do, so
/// that a plugin an operator let call this one cannot take every slot from the
/// gateway's own calls.
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Semaphore,
    limit: u32,
    queued: AtomicU32,
    max_queued: u32,
    /// The slots calls from other plugins may hold at once (half, rounded down, at
    /// least one).
    plugins_share: Semaphore,
    /// Calls from other plugins waiting for their share (at most half the queue).
    plugins_queued: AtomicU32,
}

/// Who makes a call, for [`Gate::enter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The gateway (or the embedding program).
    Gateway,
    /// Another plugin, through `host/callMethod`.
    Plugin,
}

/// A call's slot, and its place in the share of calls from other plugins.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    _slot: SemaphorePermit<'a>,
    _share: Option<SemaphorePermit<'a>>,
}

impl Gate {
    /// Calls holding a slot now.
    pub(crate) fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        self.limit.saturating_sub(free)
    }

    /// Calls waiting for a slot now.
    pub(crate) fn queued(&self) -> u32 {
        self.queued.load(Ordering::Relaxed) + self.plugins_queued.load(Ordering::Relaxed)
    }

    pub(crate) fn new(limit: u32, max_queued: u32) -> Self {
        let limit = limit.max(1);
        Self {
            slots: Semaphore::new(limit as usize),
            limit,
            queued: AtomicU32::new(0),
            max_queued,
            plugins_share: Semaphore::new(Self::plugins_share(limit) as usize),
            plugins_queued: AtomicU32::new(0),
        }
    }

    /// A slot for one call from `origin`: at once, or after queueing until `deadline`
    /// (`budget` after the call began).
    pub(crate) async fn enter(
        &self,
        plugin: &str,
        deadline: Instant,
        budget: Duration,
        origin: Origin,
    ) -> Result<Slot<'_>, ErrorObject> {
        let share = match origin {
            Origin::Gateway => None,
            Origin::Plugin => Some(self.share(plugin, deadline, budget).await?),
        };
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(Slot {
                _slot: permit,
                _share: share,
            });
        }
        let Some(place) = self.queue() else {
            return Err(errors::overloaded(plugin, self.limit, self.max_queued));
        };
        let waited = tokio::time::timeout_at(deadline.into(), self.slots.acquire()).await;
        drop(place);
        let permit = Self::waited(plugin, waited, budget, || {
            format!(
                "plugin `{plugin}` had all {} call slots busy until the call's deadline passed; the call was never sent",
                self.limit
            )
        })?;
        Ok(Slot {
            _slot: permit,
            _share: share,
        })
    }

    fn plugins_share(limit: u32) -> u32 {
        (limit / 2).max(1)
    }

    /// A place in the share of calls from other plugins: at once, or after queueing
    /// (in the share's half of the queue) until `deadline`.
    async fn share(
        &self,
        plugin: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Result<SemaphorePermit<'_>, ErrorObject> {
        if let Ok(permit) = self.plugins_share.try_acquire() {
            return Ok(permit);
        }
        let share = Self::plugins_share(self.limit);
        let waiting = self.max_queued / 2;
        let Some(place) = Queued::take(&self.plugins_queued, waiting) else {
            return Err(ErrorObject::new(
                ErrorCode::Overloaded,
                format!(
                    "plugin `{plugin}` has {share} calls from other plugins in flight and {waiting} waiting, the most it takes from them (half of its limits.maxConcurrentRequests and maxQueuedRequests); retry shortly"
                ),
            )
            .with_data(json!({ "pluginId": plugin, "retryAfterMs": 100, "limit": share })));
        };
        let waited = tokio::time::timeout_at(deadline.into(), self.plugins_share.acquire()).await;
        drop(place);
        Self::waited(plugin, waited, budget, || {
            format!(
                "plugin `{plugin}` was serving {share} calls from other plugins, the most it takes from them, until the call's deadline passed; the call was never sent"
            )
        })
    }

    /// What came of waiting for a permit until the deadline; `busy` says why the
    /// deadline passed first.
    fn waited<'a>(
        plugin: &str,
        waited: Result<Result<SemaphorePermit<'a>, AcquireError>, Elapsed>,
        budget: Duration,
        busy: impl FnOnce() -> String,
    ) -> Result<SemaphorePermit<'a>, ErrorObject> {
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(errors::unavailable(
                plugin,
                PluginState::Stopped,
                &Reason::Shutdown,
                None,
            )),
            Err(_) => Err(
                ErrorObject::new(ErrorCode::Timeout, busy()).with_data(json!({
                    "pluginId": plugin,
                    "timeoutMs": u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                })),
            ),
        }
    }
}

impl Gate {
    /// A place among the calls waiting for this plugin (for a slot, or for it to be
    /// ready again after a restart), or `None` when `maxQueuedRequests` already wait:
    /// callers cannot pile up without bound behind a plugin that is down.
    pub(crate) fn queue(&self) -> Option<Queued<'_>> {
        Queued::take(&self.queued, self.max_queued)
    }

    /// The most calls that may wait.
    pub(crate) fn max_queued(&self) -> u32 {
        self.max_queued
    }
}

/// A place in a plugin's queue, given back on drop.
#[derive(Debug)]
pub(crate) struct Queued<'a>(&'a AtomicU32);

impl<'a> Queued<'a> {
    /// A place counted in `waiting`, or `None` when `most` already wait.
    fn take(waiting: &'a AtomicU32, most: u32) -> Option<Self> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= most {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self(waiting))
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The errors callers get, with the `data` shapes of docs/protocol.md §11.
pub(crate) mod errors {
    use std::time::Duration;

    use outpost_protocol::{ErrorCode, ErrorObject, RegistrationKind};
    use serde_json::json;

    use super::super::reason::{Exit, Reason};
    use super::super::registry::PluginState;

    /// What an operator does about a plugin that needs one.
    pub(crate) const OPERATOR_ADVICE: &str =
        "fix the cause, then reload the config or restart the plugin";

    pub(crate) fn not_found(kind: RegistrationKind, name: &str) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::NotFound,
            format!(
                "no plugin registered {kind} `{name}`; `outpost plugins list` shows what is loaded"
            ),
        )
        .with_data(json!({ "kind": kind, "name": name }))
    }

    pub(crate) fn unavailable(
        plugin: &str,
        state: PluginState,
        reason: &Reason,
        retry_after: Option<Duration>,
    ) -> ErrorObject {
        unavailable_because(plugin, state, reason, "", retry_after)
    }

    /// [`unavailable`] with a note after the reason.
    pub(crate) fn unavailable_because(
        plugin: &str,
        state: PluginState,
        reason: &Reason,
        note: &str,
        retry_after: Option<Duration>,
    ) -> ErrorObject {
        let advice = match (state, retry_after) {
            (PluginState::Restarting | PluginState::Starting, Some(after)) => {
                format!("; retry in {} ms", after.as_millis())
            }
            _ if reason.needs_operator() => format!("; {OPERATOR_ADVICE}"),
            _ => String::new(),
        };
        let reason_text = format!("{reason}{note}");
        let mut data = json!({
            "pluginId": plugin,
            "state": state,
            "reason": reason_text,
            "reasonKind": super::super::reason::to_value(reason)["kind"],
        });
        if let Some(after) = retry_after {
            data["retryAfterMs"] = json!(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
        }
        ErrorObject::new(
            ErrorCode::Unavailable,
            format!("plugin `{plugin}` is {state}: {reason_text}{advice}"),
        )
        .with_data(data)
    }

    pub(crate) fn overloaded(plugin: &str, limit: u32, max_queued: u32) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::Overloaded,
            format!("plugin `{plugin}` has {limit} calls in flight and {max_queued} waiting; retry shortly or raise limits.maxConcurrentRequests"),
        )
        .with_data(json!({ "pluginId": plugin, "retryAfterMs": 100, "limit": limit }))
    }

    pub(crate) fn timeout(plugin: &str, method: &str, after: Duration) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::Timeout,
            format!(
                "plugin `{plugin}` did not answer `{method}` within {} ms; the call was cancelled",
                after.as_millis()
            ),
        )
        .with_data(json!({ "pluginId": plugin, "timeoutMs": u64::try_from(after.as_millis()).unwrap_or(u64::MAX) }))
    }

    /// A timeout during which the plugin wrote a line that could not be read: most
    /// likely its answer, too long or broken.
    pub(crate) fn unreadable(
        plugin: &str,
        method: &str,
        after: Duration,
        problem: &str,
    ) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::Timeout,
            format!(
                "plugin `{plugin}` did not answer `{method}` readably within {} ms; the call was cancelled. A line it wrote meanwhile could not be read, most likely its answer: {problem}",
                after.as_millis()
            ),
        )
        .with_data(json!({
            "pluginId": plugin,
            "timeoutMs": u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            "unreadable": problem,
        }))
    }

    /// An answer that could not be read (its start named the call).
    pub(crate) fn unreadable_answer(plugin: &str, method: &str, problem: &str) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::InternalError,
            format!(
                "plugin `{plugin}` answered `{method}` with a line that could not be read: {problem}; the plugin must keep its answers within the limits it was given in `initialize`"
            ),
        )
        .with_data(json!({ "pluginId": plugin, "unreadable": problem }))
    }

    pub(crate) fn exited(plugin: &str, report: Option<&Exit>) -> ErrorObject {
        let Some(report) = report else {
            return ErrorObject::new(
                ErrorCode::PluginExited,
                format!("plugin `{plugin}` closed its connection while the call was in flight; it may or may not have taken effect"),
            )
            .with_data(json!({ "pluginId": plugin, "exit": "unknown", "stderrTail": [] }));
        };
        let mut data = json!({
            "pluginId": plugin,
            "exit": report.status.text,
            "stderrTail": report.stderr_tail,
        });
        if let Some(code) = report.status.exit_code {
            data["exitCode"] = json!(code);
        }
        if let Some(signal) = report.status.signal {
            data["signal"] = json!(signal);
        }
        ErrorObject::new(
            ErrorCode::PluginExited,
            format!(
                "plugin `{plugin}` exited while the call was in flight ({report}); it may or may not have taken effect"
            ),
        )
        .with_data(data)
    }
}
