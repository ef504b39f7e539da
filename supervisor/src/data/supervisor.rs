//! The [`Supervisor`]: what a gateway embeds to run its plugins out of process, and the
//! one way in for everything else (the network API, `outpost serve` and `outpost call`
//! are built on it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use outpost_protocol::ErrorObject;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::call::{Answer, Call};
use super::gateway::{Gateway, GatewayHandle, NoGateway};
use super::metrics::PluginMetrics;
use super::observe;
use super::os::{self, Spawner};
use super::plugin::{Conn, Control, Down, Gate, PluginRuntime};
use super::reason::Reason;
use super::registry::{PluginState, RegistryEvent, RegistrySnapshot};
use super::runner;
use super::shared::Shared;
use super::stderr::StderrTail;
use crate::spec::PluginSpec;

/// Why the supervisor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Two plugins share an id.
    #[error("plugin id `{0}` appears twice; every plugin needs its own id")]
    DuplicateId(String),
    /// The spawner thread could not be created.
    #[error("could not start the spawner thread")]
    Spawner(#[source] std::io::Error),
}

/// Why [`Supervisor::apply`] changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Two plugins share an id.
    #[error("plugin id `{0}` appears twice; every plugin needs its own id")]
    DuplicateId(String),
    /// [`Supervisor::shutdown`] was called.
    #[error("the supervisor is shutting down")]
    ShuttingDown,
}

/// Why an order for one plugin (stop, start, restart) was not carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No plugin of that id is supervised.
    #[error("no plugin `{0}` is supervised here")]
    UnknownPlugin(String),
    /// [`Supervisor::shutdown`] was called.
    #[error("plugin `{0}`: the supervisor is shutting down")]
    ShuttingDown(String),
}

/// What [`Supervisor::apply`] did, plugin ids by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Applied {
    /// New plugins, now starting.
    pub started: Vec<String>,
    /// Plugins whose spec changed: stopped, and starting again with the new spec.
    pub restarted: Vec<String>,
    /// Plugins no longer in the set: stopped and forgotten.
    pub stopped: Vec<String>,
    /// Plugins left exactly as they were: same process, same connection.
    pub unchanged: Vec<String>,
}

/// Sets up a [`Supervisor`] before it starts.
#[derive(Default)]
#[must_use]
pub struct Builder {
    gateway: Option<Box<dyn Gateway>>,
    resource_sampling: Option<Duration>,
    keep_dumpable: bool,
    no_container_ahead: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("gateway", &self.gateway.is_some())
            .field("resource_sampling", &self.resource_sampling)
            .field("keep_dumpable", &self.keep_dumpable)
            .field("no_container_ahead", &self.no_container_ahead)
            .finish()
    }
}

impl Builder {
    /// What plugins may ask of the gateway (its own methods, its config). Default:
    /// [`NoGateway`], which offers nothing.
    pub fn gateway(mut self, gateway: impl Gateway) -> Self {
        self.gateway = Some(Box::new(gateway));
        self
    }

    /// Measures each plugin's resident memory and CPU use (its process and the
    /// processes descended from it) every `interval`, for
    /// [`Supervisor::encode_metrics`]. Default: not measured.
    pub fn sample_resources(mut self, interval: Duration) -> Self {
        self.resource_sampling = Some(interval);
        self
    }

    /// Leaves the process dumpable. By default [`Builder::start`] makes the whole
    /// process non-dumpable (`PR_SET_DUMPABLE` 0), so that other processes of the same
    /// user, plugins run without namespaces among them, cannot read its
    /// `/proc/<pid>/environ` (the secrets it was started with) or its memory, nor
    /// ptrace it. That also turns off its core dumps and keeps debuggers and profilers
    /// of the same user out: an embedder that needs those calls this.
    pub fn keep_dumpable(mut self) -> Self {
        self.keep_dumpable = true;
        self
    }

    /// Makes no container ahead of a contained plugin's start. By default, once the
    /// supervisor has started a plugin in namespaces and then has had nothing to start
    /// for 10 ms, it prepares the namespaces of the next one (two small processes, and
    /// a user namespace when it is not root, holding nothing of the supervisor's), so
    /// that a restart, a reload or an added plugin starts about as fast as one that is
    /// not contained. Without it, every contained start makes its namespaces then.
    pub fn no_container_ahead(mut self) -> Self {
        self.no_container_ahead = true;
        self
    }

    /// Starts every plugin in `specs` concurrently and returns at once; plugins become
    /// ready in the background (see [`Supervisor::wait_settled`]). Must be called from
    /// within a tokio runtime.
    ///
    /// `specs` are in precedence order, as
    /// [`Inventory::plugin_specs`](crate::control::Inventory::plugin_specs) gives them
    /// (discovery order): when two plugins register the same key, the one listed first
    /// owns it, whichever finishes its handshake first.
    ///
    /// Makes the process non-dumpable first, unless [`Builder::keep_dumpable`] was
    /// called.
    pub fn start(self, specs: Vec<PluginSpec>) -> Result<Supervisor, StartError> {
        if !self.keep_dumpable
            && let Err(error) = os::make_undumpable()
        {
            tracing::warn!(
                "the supervisor stays dumpable (same-user processes can read its environment): {error}"
            );
        }
        let mut plugins = BTreeMap::new();
        let mut receivers = Vec::new();
        let order: Vec<String> = specs.iter().map(|spec| spec.id.clone()).collect();
        for spec in specs {
            let (runtime, orders) = PluginRuntime::for_spec(spec, Arc::new(PluginMetrics::new()));
            let id = runtime.id().to_owned();
            if plugins.insert(id.clone(), runtime.clone()).is_some() {
                return Err(StartError::DuplicateId(id));
            }
            receivers.push((runtime, orders));
        }
        let spawner = Spawner::new(
            tokio::runtime::Handle::current(),
            (!self.no_container_ahead).then_some(os::AHEAD_AFTER),
        )
        .map_err(StartError::Spawner)?;
        let gateway = GatewayHandle(self.gateway.unwrap_or_else(|| Box::new(NoGateway)));
        let shared = Arc::new(Shared::new(plugins, &order, spawner, gateway));
        let sampler = self
            .resource_sampling
            .filter(|interval| !interval.is_zero())
            .map(|interval| {
                tokio::spawn(observe::sample_resources(Arc::downgrade(&shared), interval))
            });
        let supervisor = Supervisor {
            metrics: observe::registry(Arc::downgrade(&shared)),
            shared,
            runners: Mutex::default(),
            applying: tokio::sync::Mutex::new(()),
            closing: AtomicBool::new(false),
            sampler,
        };
        for (runtime, orders) in receivers {
            supervisor.spawn_runner(runtime, orders);
        }
        Ok(supervisor)
    }
}

impl PluginRuntime {
    /// A plugin that is about to start, and the receiving end of its orders.
    pub(super) fn for_spec(
        spec: PluginSpec,
        metrics: Arc<PluginMetrics>,
    ) -> (Arc<Self>, mpsc::Receiver<Control>) {
        let limits = &spec.launch.policy.limits;
        let (control, orders) = mpsc::channel(8);
        let runtime = Arc::new(PluginRuntime {
            tail: Arc::new(StderrTail::new(limits.stderr_lines as usize)),
            gate: Gate::new(limits.max_concurrent_requests, limits.max_queued_requests),
            conn: watch::channel(Conn::Down(Down {
                state: PluginState::Starting,
                reason: Reason::Starting,
                retry_at: None,
            }))
            .0,
            control,
            metrics,
            isolation: Mutex::default(),
            spec,
        });
        (runtime, orders)
    }
}

/// Runs a set of plugins: see the crate docs. Dropping it kills every plugin process at
/// once (use [`Supervisor::shutdown`] for the graceful path).
#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Shared>,
    /// Encodes the metrics on each scrape.
    metrics: prometheus_client::registry::Registry,
    /// Samples resources, when asked to.
    sampler: Option<JoinHandle<()>>,
    /// Each plugin's runner task, by id.
    runners: Mutex<HashMap<String, JoinHandle<()>>>,
    /// One `apply` at a time.
    applying: tokio::sync::Mutex<()>,
    closing: AtomicBool,
}

impl Supervisor {
    /// A [`Builder`], to give the supervisor a [`Gateway`] before it starts.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts every plugin in `specs` with no [`Gateway`]: see [`Builder::start`].
    pub fn start(specs: Vec<PluginSpec>) -> Result<Self, StartError> {
        Self::builder().start(specs)
    }

    /// Makes one call: see [`Call`].
    pub async fn call(&self, call: Call) -> Result<Answer, ErrorObject> {
        self.shared.call(call).await
    }

    /// The registry now: plugins, their states, their registrations.
    pub fn snapshot(&self) -> RegistrySnapshot {
        self.shared.registry.snapshot()
    }

    /// A snapshot and every change after it, in order, nothing missed or repeated. The
    /// channel is bounded: a receiver that falls behind gets `Lagged` and should take a
    /// fresh snapshot.
    pub fn subscribe(&self) -> (RegistrySnapshot, broadcast::Receiver<RegistryEvent>) {
        self.shared.registry.subscribe()
    }

    /// How a plugin's current (or last) process is confined: what its sandbox came to
    /// on this host. `None` before its first start, and for an unknown plugin.
    pub fn isolation(&self, plugin: &str) -> Option<crate::isolation::Isolation> {
        self.shared
            .plugin(plugin)?
            .isolation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A plugin's state and why.
    pub fn state(&self, plugin: &str) -> Option<(PluginState, Option<Reason>)> {
        self.shared.registry.state_of(plugin)
    }

    /// Writes the supervisor's metrics (plugin states, restarts, calls by plugin, kind
    /// and outcome, call latency, protocol traffic, queue depths, and resources when
    /// [`Builder::sample_resources`] was asked for) in the Prometheus text format, all
    /// named `outpost_*`. The final `# EOF` line is left out, so the caller can add
    /// metrics of its own after them; docs/operators.md lists every metric.
    pub fn encode_metrics(&self, out: &mut String) -> std::fmt::Result {
        observe::encode(&self.metrics, out)
    }

    /// The spec a plugin runs with.
    pub fn spec(&self, plugin: &str) -> Option<PluginSpec> {
        self.shared
            .plugin(plugin)
            .map(|runtime| runtime.spec.clone())
    }

    /// Waits until no plugin is starting, restarting or stopping (each is ready, failed
    /// or stopped), or `timeout` passes. Returns whether that happened.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        // Subscribed first, so that no change between the check and the wait is missed.
        // The check reads the states only: a snapshot per event would copy every
        // registration, and a fleet starting sends thousands of events.
        let mut events = self.shared.registry.watch();
        if self.shared.registry.settled() {
            return true;
        }
        tokio::time::timeout(timeout, async {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::PluginState { .. } | RegistryEvent::PluginRemoved { .. })
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.shared.registry.settled() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
        .await
        .is_ok()
    }

    /// Stops one plugin (the stop escalation) and keeps it stopped.
    pub async fn stop_plugin(&self, plugin: &str) -> Result<(), ControlError> {
        self.order(plugin, Control::Stop).await
    }

    /// Starts a stopped or failed plugin with a fresh crash history; nothing if it
    /// runs. Returns once it is starting: [`Supervisor::wait_settled`] waits for the
    /// outcome.
    pub async fn start_plugin(&self, plugin: &str) -> Result<(), ControlError> {
        self.order(plugin, Control::Start).await
    }

    /// Restarts one plugin: stops it if it runs, forgets its crash history (so a
    /// `failed` plugin gets a fresh start), starts it again. Returns once it is
    /// starting.
    pub async fn restart_plugin(&self, plugin: &str) -> Result<(), ControlError> {
        self.order(plugin, Control::Restart).await
    }

    async fn order(
        &self,
        plugin: &str,
        order: impl FnOnce(oneshot::Sender<()>) -> Control,
    ) -> Result<(), ControlError> {
        let runtime = self
            .shared
            .plugin(plugin)
            .ok_or_else(|| ControlError::UnknownPlugin(plugin.to_owned()))?;
        let gone = || ControlError::ShuttingDown(plugin.to_owned());
        if self.closing.load(Ordering::SeqCst) {
            return Err(gone());
        }
        let (reply, done) = oneshot::channel();
        runtime
            .control
            .send(order(reply))
            .await
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())
    }

    /// Reconciles the running set with `specs`: plugins whose spec is unchanged keep
    /// running untouched (same process, no new handshake); plugins whose spec changed
    /// are stopped and started again with the new one; plugins not in `specs` are
    /// stopped and forgotten (their registrations unregistered); new ones start.
    ///
    /// Returns once every process that had to stop is gone and every new one is
    /// starting; registry events say what happened. Ids must be unique, or nothing
    /// changes. `specs` are in precedence order, as for [`Builder::start`]; owners of
    /// contested keys follow the new order.
    pub async fn apply(&self, specs: Vec<PluginSpec>) -> Result<Applied, ApplyError> {
        let _one_at_a_time = self.applying.lock().await;
        if self.closing.load(Ordering::SeqCst) {
            return Err(ApplyError::ShuttingDown);
        }
        let mut seen = BTreeSet::new();
        for spec in &specs {
            if !seen.insert(spec.id.clone()) {
                return Err(ApplyError::DuplicateId(spec.id.clone()));
            }
        }
        let current: BTreeMap<String, Arc<PluginRuntime>> = self
            .shared
            .plugins()
            .into_iter()
            .map(|runtime| (runtime.id().to_owned(), runtime))
            .collect();
        let mut applied = Applied::default();
        let order: Vec<String> = specs.iter().map(|spec| spec.id.clone()).collect();

        let removed =
            current
                .iter()
                .filter(|(id, _)| !seen.contains(*id))
                .map(|(id, runtime)| async move {
                    retire(runtime, Reason::Removed).await;
                    self.forget_runner(id);
                    self.shared.set_plugin(id, None);
                    self.shared.registry.remove_plugin(id);
                    id.clone()
                });
        let mut replaced = Vec::new();
        let mut added = Vec::new();
        for spec in specs {
            match current.get(&spec.id) {
                Some(runtime) if runtime.spec == spec => {
                    applied.unchanged.push(spec.id);
                }
                Some(runtime) => replaced.push((runtime.clone(), spec)),
                None => added.push(spec),
            }
        }
        let replacements = replaced.into_iter().map(|(old, spec)| async move {
            // The plugin stays the same plugin: its counters go on.
            let (runtime, orders) = PluginRuntime::for_spec(spec, old.metrics.clone());
            // New calls find the new plugin (starting) while the old one stops.
            self.shared.set_plugin(runtime.id(), Some(runtime.clone()));
            retire(&old, Reason::Reconfigured).await;
            self.forget_runner(runtime.id());
            let id = runtime.id().to_owned();
            // Starting before `apply` returns, so `wait_settled` right after it waits.
            self.shared
                .registry
                .set_state(&id, PluginState::Starting, Some(Reason::Starting));
            self.spawn_runner(runtime, orders);
            id
        });
        let (stopped, restarted) = futures_util::future::join(
            futures_util::future::join_all(removed),
            futures_util::future::join_all(replacements),
        )
        .await;
        applied.stopped = stopped;
        applied.restarted = restarted;
        let mut starting = Vec::new();
        for spec in added {
            let (runtime, orders) = PluginRuntime::for_spec(spec, Arc::new(PluginMetrics::new()));
            self.shared.registry.add_plugin(runtime.id());
            self.shared.set_plugin(runtime.id(), Some(runtime.clone()));
            applied.started.push(runtime.id().to_owned());
            starting.push((runtime, orders));
        }
        // Owners follow the new order (a reload can add plugins anywhere in discovery
        // order, or reorder it), before any new plugin's handshake.
        self.shared
            .registry
            .set_precedence(order.iter().map(String::as_str));
        for (runtime, orders) in starting {
            self.spawn_runner(runtime, orders);
        }
        Ok(applied)
    }

    /// Stops every plugin concurrently with the stop escalation and waits until all are
    /// reaped. Calls made afterwards fail with `-32003`, and orders with
    /// [`ControlError::ShuttingDown`].
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _no_apply = self.applying.lock().await;
        let plugins = self.shared.plugins();
        futures_util::future::join_all(
            plugins
                .iter()
                .map(|runtime| retire(runtime, Reason::Shutdown)),
        )
        .await;
        let runners =
            std::mem::take(&mut *self.runners.lock().unwrap_or_else(PoisonError::into_inner));
        for runner in runners.into_values() {
            runner.abort();
        }
    }

    fn spawn_runner(&self, runtime: Arc<PluginRuntime>, orders: mpsc::Receiver<Control>) {
        let id = runtime.id().to_owned();
        let task = tokio::spawn(runner::run(Arc::downgrade(&self.shared), runtime, orders));
        if let Some(previous) = self
            .runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, task)
        {
            previous.abort();
        }
    }

    fn forget_runner(&self, id: &str) {
        self.runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// Stops a plugin's process for good and ends its runner; returns when both are done.
async fn retire(runtime: &PluginRuntime, reason: Reason) {
    let (reply, done) = oneshot::channel();
    if runtime
        .control
        .send(Control::Retire(reason, reply))
        .await
        .is_ok()
    {
        let _ = done.await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(sampler) = &self.sampler {
            sampler.abort();
        }
        // The last resort: each runner's process group is killed when its task is
        // dropped (see os::ProcessGroup).
        for (_, runner) in self
            .runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            runner.abort();
        }
    }
}
