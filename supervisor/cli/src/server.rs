//! What `outpost serve` runs: the supervisor, the config it came from, and reloads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use outpost_supervisor::control::{
    self, ConfigError, Diagnostic, InspectReport, Inventory, ListRow, OutpostSettings, Severity,
    Status,
};
use outpost_supervisor::{Applied, ApplyError, PluginSnapshot, PluginState, Supervisor};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::events::EventHub;
use crate::api::gateway::RemoteGateway;
use crate::api::token;

/// The state every request of the API shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) supervisor: Supervisor,
    /// The config file `outpost serve` was started with (reloads read it again).
    pub(crate) config_path: PathBuf,
    /// What the last successful load found, for `plugins.list` and `plugins.inspect`.
    inventory: RwLock<Inventory>,
    /// The `outpost` block of the config `serve` started with: what is in effect until
    /// it restarts, whatever reloads say.
    started_with: OutpostSettings,
    /// The token came from `OUTPOST_API_TOKEN`, so the config's token settings are not
    /// in effect.
    token_from_environment: bool,
    /// Where the API listens (which `--api-listen` may have chosen over the config).
    api_address: OnceLock<SocketAddr>,
    /// This run of `outpost serve`: 16 random hex digits, chosen at start, so a client
    /// can tell sequence numbers of another run from this one's.
    pub(crate) run: String,
    pub(crate) events: Arc<EventHub>,
    pub(crate) gateway: Arc<RemoteGateway>,
    /// Calls in flight that a client named (`callId`), for `call.cancel`.
    calls: Mutex<HashMap<String, CancellationToken>>,
    /// The bearer token every API request must carry.
    pub(crate) token: String,
    started: SystemTime,
    /// Every plugin got past its first start (for `/readyz`).
    settled: AtomicBool,
    reloading: tokio::sync::Mutex<()>,
}

/// What a reload did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reloaded {
    /// Plugins started, restarted, stopped and left alone.
    pub(crate) applied: Applied,
    /// Unchanged plugins that were `failed` and were started again: after a fix outside
    /// the config (the plugin's code, its environment), a reload is how they get a new
    /// chance.
    pub(crate) retried: Vec<String>,
    /// Warnings in the reloaded config (`outpost plugins doctor` lists them).
    pub(crate) warnings: usize,
    /// Settings whose value in the config differs from the one in effect since
    /// `outpost serve` started: they take effect only when it restarts.
    pub(crate) restart_needed: Vec<&'static str>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    /// The config file could not be read or parsed.
    #[error("the config was not reloaded: {0}")]
    Unreadable(#[source] ConfigError),
    /// The config file has errors.
    #[error("the config was not reloaded: {} error(s) in {}: {}", .errors.len(), .file.display(), .errors.join("; "))]
    Invalid { file: PathBuf, errors: Vec<String> },
    /// The supervisor refused the new set.
    #[error("the config was not reloaded: {0}")]
    Apply(#[source] ApplyError),
}

impl ReloadError {
    /// The problems, one per item, for the API's error data.
    pub(crate) fn problems(&self) -> Vec<String> {
        match self {
            Self::Invalid { errors, .. } => errors.clone(),
            other => vec![other.to_string()],
        }
    }
}

impl State {
    pub(crate) fn new(
        supervisor: Supervisor,
        inventory: Inventory,
        gateway: Arc<RemoteGateway>,
        token: String,
    ) -> Arc<Self> {
        let run = token::random_hex(8).unwrap_or_else(|_| {
            // No randomness from the OS (it would have refused the token first): the
            // time and the pid still differ from one run to the next.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let mixed = (now.as_secs() << 30)
                ^ u64::from(now.subsec_nanos())
                ^ (u64::from(std::process::id()) << 40);
            format!("{mixed:016x}")
        });
        Arc::new(Self {
            events: EventHub::start(&supervisor, &run),
            run,
            supervisor,
            config_path: inventory.config.path.clone(),
            started_with: inventory.config.outpost.clone(),
            token_from_environment: token::in_environment(),
            api_address: OnceLock::new(),
            inventory: RwLock::new(inventory),
            gateway,
            calls: Mutex::default(),
            token,
            started: SystemTime::now(),
            settled: AtomicBool::new(false),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// Records where the API listens (once, when it starts).
    pub(crate) fn listening_on(&self, address: SocketAddr) {
        let _ = self.api_address.set(address);
    }

    /// Marks the first start done (every plugin ready, failed or stopped once).
    pub(crate) fn mark_settled(&self) {
        self.settled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn settled(&self) -> bool {
        self.settled.load(Ordering::SeqCst)
    }

    /// Milliseconds since `outpost serve` started.
    pub(crate) fn uptime_ms(&self) -> u64 {
        self.started
            .elapsed()
            .map_or(0, |up| u64::try_from(up.as_millis()).unwrap_or(u64::MAX))
    }

    /// Registers a call a client named; `None` if that name is in use.
    pub(crate) fn register_call(&self, id: &str, token: CancellationToken) -> Option<CallName<'_>> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if calls.contains_key(id) {
            return None;
        }
        calls.insert(id.to_owned(), token);
        Some(CallName {
            state: self,
            id: id.to_owned(),
        })
    }

    /// `call.cancel`: whether a call of that name was in flight.
    pub(crate) fn cancel_call(&self, id: &str) -> bool {
        match self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Reads the config again, runs the control plane and applies the result. A config
    /// that cannot be read, or has errors of its own, changes nothing.
    pub(crate) async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let path = self.config_path.clone();
        let inventory = tokio::task::spawn_blocking(move || control::load(&path))
            .await
            .expect("the control plane does not panic")
            .map_err(ReloadError::Unreadable)?;
        let errors: Vec<String> = inventory
            .all_diagnostics()
            .filter(|d| {
                d.severity == Severity::Error
                    && d.file.as_deref() == Some(self.config_path.as_path())
            })
            .map(Diagnostic::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(ReloadError::Invalid {
                file: self.config_path.clone(),
                errors,
            });
        }
        let warnings = inventory
            .all_diagnostics()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        let restart_needed = self.restart_needed(&inventory.config.outpost);
        let applied = self
            .supervisor
            .apply(inventory.plugin_specs())
            .await
            .map_err(ReloadError::Apply)?;
        let mut retried = Vec::new();
        for id in &applied.unchanged {
            if self
                .supervisor
                .state(id)
                .is_some_and(|(state, _)| state == PluginState::Failed)
                && self.supervisor.restart_plugin(id).await.is_ok()
            {
                retried.push(id.clone());
            }
        }
        *self
            .inventory
            .write()
            .unwrap_or_else(PoisonError::into_inner) = inventory;
        Ok(Reloaded {
            applied,
            retried,
            warnings,
            restart_needed,
        })
    }

    /// The keys of `new` whose values differ from the ones in effect since `serve`
    /// started. A key that is not in effect (the address when `--api-listen` chose
    /// another, the config's token settings when `OUTPOST_API_TOKEN` is set) is left
    /// out, since a restart with the same command line would not use it either.
    fn restart_needed(&self, new: &OutpostSettings) -> Vec<&'static str> {
        let old = &self.started_with;
        let mut keys = Vec::new();
        let listen_from_config = self
            .api_address
            .get()
            .is_none_or(|address| *address == old.api_listen);
        if listen_from_config && new.api_listen != old.api_listen {
            keys.push("outpost.api.listen");
        }
        if !self.token_from_environment {
            if new.api_token != old.api_token {
                keys.push("outpost.api.token");
            }
            // The token file matters when no token is configured, before or after.
            if (old.api_token.is_none() || new.api_token.is_none())
                && new.api_token_file != old.api_token_file
            {
                keys.push("outpost.api.tokenFile");
            }
        }
        if new.api_registry_file != old.api_registry_file {
            keys.push("outpost.api.registryFile");
        }
        if new.http_listen != old.http_listen {
            keys.push("outpost.http.listen");
        }
        if new.http_max_body_bytes != old.http_max_body_bytes {
            keys.push("outpost.http.maxBodyBytes");
        }
        if new.metrics_sample_ms != old.metrics_sample_ms {
            keys.push("outpost.metrics.sampleMs");
        }
        keys
    }

    /// `plugins.list`: every discovered plugin as `outpost plugins list --json` shows
    /// it, with `runtime` for each one the supervisor runs.
    pub(crate) fn plugin_rows(&self) -> Vec<Value> {
        let snapshot = self.supervisor.snapshot();
        let inventory = self
            .inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<Value> = ListRow::all(&inventory)
            .into_iter()
            .map(|row| {
                let running = row.shadowed_by.is_none() && row.passed_over_for.is_none();
                let mut value = serde_json::to_value(&row).expect("list rows serialize");
                value["runtime"] = snapshot
                    .plugins
                    .iter()
                    .find(|plugin| running && plugin.id == row.id)
                    .map_or(Value::Null, |plugin| {
                        self.runtime(plugin, &snapshot.registrations, false)
                    });
                value
            })
            .collect();
        // A plugin the supervisor runs that the inventory does not know (an embedder's).
        for plugin in &snapshot.plugins {
            if !rows.iter().any(|row| row["id"] == plugin.id.as_str()) {
                rows.push(json!({"id": plugin.id, "runtime": self.runtime(plugin, &snapshot.registrations, false)}));
            }
        }
        rows
    }

    /// `plugins.inspect`: what `outpost plugins inspect --json` shows (secrets
    /// redacted), with `runtime`: state, process and every registration as made.
    pub(crate) fn inspect(&self, id: &str) -> Option<Value> {
        let snapshot = self.supervisor.snapshot();
        let inventory = self
            .inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let plugin = snapshot.plugins.iter().find(|p| p.id == id);
        let report = InspectReport::new(&inventory, id);
        if report.is_none() && plugin.is_none() {
            return None;
        }
        let mut value = report.map_or_else(
            || json!({"id": id}),
            |r| serde_json::to_value(r).expect("inspect reports serialize"),
        );
        value["runtime"] = plugin.map_or(Value::Null, |plugin| {
            self.runtime(plugin, &snapshot.registrations, true)
        });
        Some(value)
    }

    /// One plugin's `runtime` member: its snapshot, `uptimeMs`, its registrations (all
    /// of them when `detailed`, else their count) and its `isolation`.
    fn runtime(
        &self,
        plugin: &PluginSnapshot,
        registrations: &[outpost_supervisor::RegistrationSnapshot],
        detailed: bool,
    ) -> Value {
        let mut value = runtime(plugin, registrations, detailed);
        value["isolation"] = json!(self.supervisor.isolation(&plugin.id));
        value
    }

    /// The ids of the plugins the supervisor runs, sorted, for "no such plugin" errors.
    pub(crate) fn supervised_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .supervisor
            .snapshot()
            .plugins
            .into_iter()
            .map(|p| p.id)
            .collect();
        ids.sort();
        ids
    }

    /// How the last load saw `id` (the copy that wins over shadowed ones), when the
    /// supervisor does not run it: why it does not.
    pub(crate) fn discovered(&self, id: &str) -> Option<Discovered> {
        if self.supervisor.state(id).is_some() {
            return None;
        }
        let inventory = self
            .inventory
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let rows = ListRow::all(&inventory);
        let mut rows = rows.into_iter().filter(|row| row.id == id);
        let first = rows.next()?;
        let active = |row: &ListRow| row.shadowed_by.is_none() && row.passed_over_for.is_none();
        let row = if active(&first) {
            first
        } else {
            rows.find(active).unwrap_or(first)
        };
        Some(Discovered {
            status: row.status,
            reason: row.reason,
            not_runnable: row.not_runnable_reason,
        })
    }
}

/// A plugin the last load found but the supervisor does not run.
#[derive(Debug)]
pub(crate) struct Discovered {
    pub(crate) status: Status,
    /// Why it has that status (`plugins.entries.x.enabled is false`...).
    pub(crate) reason: String,
    /// Why it cannot run out of process, when it cannot.
    pub(crate) not_runnable: Option<String>,
}

/// A named call; dropping it frees the name.
pub(crate) struct CallName<'a> {
    state: &'a State,
    id: String,
}

impl Drop for CallName<'_> {
    fn drop(&mut self) {
        self.state
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// A plugin's runtime view: state, why, process, and its registrations (in full with
/// `detailed`, else counted).
fn runtime(
    plugin: &PluginSnapshot,
    registrations: &[outpost_supervisor::RegistrationSnapshot],
    detailed: bool,
) -> Value {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    let mut value = serde_json::to_value(plugin).expect("plugin snapshots serialize");
    value["uptimeMs"] = plugin
        .ready_since_ms
        .map_or(Value::Null, |since| json!(now_ms.saturating_sub(since)));
    let own = registrations.iter().filter(|r| r.plugin == plugin.id);
    if detailed {
        value["registrations"] = json!(own.collect::<Vec<_>>());
    } else {
        value["registrations"] = json!(own.count());
    }
    value
}
