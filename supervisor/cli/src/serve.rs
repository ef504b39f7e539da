//! `outpost serve` and `outpost call`: the data plane on the command line.
//!
//! `serve` runs every enabled, runnable plugin of the config until SIGTERM or SIGINT,
//! logging each state change, then stops them all with the stop escalation and exits 0.
//! A second signal during the stop kills every plugin's process group at once. SIGHUP
//! restarts every plugin that was given up on (`failed`), with a fresh crash history.
//!
//! `call` is the one-shot form: it starts the plugins that can own the registration,
//! waits for their handshakes, makes one call, prints the result as JSON and stops
//! them again.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use outpost_protocol::methods::CallContext;
use outpost_supervisor::control::{self, Inventory, Severity, Status};
use outpost_supervisor::{Call, PluginSpec, PluginState, RegistryEvent, Supervisor};
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;

/// How much longer than the slowest handshake timeout `call` waits for its plugins.
const SETTLE_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file (JSON5).
    #[arg(long, value_name = "FILE", default_value = control::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// What to call.
    kind: CallKind,
    /// The tool, command, gateway method or hook event; the request path for `http`;
    /// `<capability>:<id>` for `provider` (e.g. `embedding:text-tools-hash`); the id
    /// for `channel` and `context-engine`.
    name: String,
    /// The call's input as JSON: the tool's arguments (an object), the command's
    /// argument text (a string), the method's params, the hook's payload, the HTTP
    /// request (`{"method": "POST", "body": "..."}`), or the operation's params.
    #[arg(long, value_name = "JSON")]
    args: Option<String>,
    /// The operation, for `provider`, `channel` and `context-engine`.
    #[arg(long, value_name = "NAME")]
    operation: Option<String>,
    /// The call context as JSON (docs/protocol.md, "The call context"), e.g.
    /// `{"sessionKey": "s1", "channel": "cli"}`. The operator at the console counts as
    /// an authorized sender unless this says `"isAuthorizedSender": false`.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// The call's deadline in milliseconds (default: the plugin's `timeouts.callMs`).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// The config file (JSON5).
    #[arg(long, value_name = "FILE", default_value = control::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CallKind {
    Tool,
    Command,
    Method,
    Hook,
    Http,
    Provider,
    Channel,
    ContextEngine,
}

impl From<CallKind> for outpost_supervisor::CallKind {
    fn from(kind: CallKind) -> Self {
        match kind {
            CallKind::Tool => Self::Tool,
            CallKind::Command => Self::Command,
            CallKind::Method => Self::GatewayMethod,
            CallKind::Hook => Self::Hook,
            CallKind::Http => Self::HttpRoute,
            CallKind::Provider => Self::Provider,
            CallKind::Channel => Self::Channel,
            CallKind::ContextEngine => Self::ContextEngine,
        }
    }
}

#[derive(Debug, Args)]
struct LogArgs {
    /// Log format on stderr. The level comes from `RUST_LOG` (default `info`;
    /// `warn` for `call`).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn init_logging(args: &LogArgs, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// Loads the config and logs what will not run and why.
fn load(config: &std::path::Path) -> anyhow::Result<Inventory> {
    let inventory = control::load(config)?;
    for diagnostic in inventory.all_diagnostics() {
        match diagnostic.severity {
            Severity::Error => tracing::error!("{diagnostic}"),
            Severity::Warning => tracing::warn!("{diagnostic}"),
            Severity::Advisory => tracing::debug!("{diagnostic}"),
        }
    }
    for record in &inventory.plugins {
        if record.status == Status::Enabled && !record.runnable() {
            let why = record.not_runnable.as_deref().unwrap_or("no launch spec");
            tracing::warn!(plugin = %record.id, "enabled but not runnable out of process: {why}");
        } else if record.status != Status::Enabled && record.shadowed_by.is_none() {
            tracing::info!(plugin = %record.id, status = %record.status, "not started: {}", record.reason);
        }
    }
    Ok(inventory)
}

pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log, "info");
    let inventory = load(&args.config)?;
    let specs = inventory.plugin_specs();
    if specs.is_empty() {
        tracing::warn!(
            config = %inventory.config.path.display(),
            "no plugin is enabled and runnable; `outpost plugins list --config {}` says why",
            args.config.display()
        );
    }
    runtime()?.block_on(async move {
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let supervisor = Supervisor::start(specs)?;
        let (snapshot, mut events) = supervisor.subscribe();
        tracing::info!(plugins = snapshot.plugins.len(), "supervising");
        let mut events_open = true;
        let signal = loop {
            tokio::select! {
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
                _ = hangup.recv() => restart_failed(&supervisor).await,
                event = events.recv(), if events_open => match event {
                    Ok(event) => log_event(&event),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "fell behind the registry's events; some state changes were not logged");
                    }
                    Err(RecvError::Closed) => events_open = false,
                },
            }
        };
        tracing::info!("{signal}: stopping every plugin (a second signal kills them at once)");
        tokio::select! {
            () = supervisor.shutdown() => {
                tracing::info!("every plugin stopped; exiting");
                Ok(ExitCode::SUCCESS)
            }
            _ = terminate.recv() => Ok(forced(supervisor)),
            _ = interrupt.recv() => Ok(forced(supervisor)),
        }
    })
}

/// SIGHUP: every `failed` plugin starts again.
async fn restart_failed(supervisor: &Supervisor) {
    let failed: Vec<String> = supervisor
        .snapshot()
        .plugins
        .into_iter()
        .filter(|plugin| plugin.state == PluginState::Failed)
        .map(|plugin| plugin.id)
        .collect();
    if failed.is_empty() {
        tracing::info!("SIGHUP: no plugin is failed; nothing to restart");
    }
    for plugin in failed {
        tracing::info!(plugin = %plugin, "SIGHUP: restarting the failed plugin");
        if let Err(error) = supervisor.restart_plugin(&plugin).await {
            tracing::warn!(plugin = %plugin, "SIGHUP: could not restart: {error}");
        }
    }
}

/// The second signal: dropping the supervisor kills every process group.
fn forced(supervisor: Supervisor) -> ExitCode {
    tracing::warn!("second signal: killing every plugin's process group");
    drop(supervisor);
    ExitCode::FAILURE
}

fn log_event(event: &RegistryEvent) {
    match event {
        RegistryEvent::PluginState {
            plugin,
            state,
            reason,
            pid,
            ..
        } => {
            let text = reason.as_ref().map(|reason| {
                if reason.needs_operator() {
                    format!("{reason}; fix the cause, then `outpost reload` (or `outpost plugins restart {plugin}`)")
                } else {
                    reason.to_string()
                }
            });
            let reason = text.as_deref();
            match state {
                PluginState::Failed => tracing::error!(plugin = %plugin, reason, "{state}"),
                PluginState::Restarting => tracing::warn!(plugin = %plugin, reason, "{state}"),
                _ => tracing::info!(plugin = %plugin, pid, reason, "{state}"),
            }
        }
        RegistryEvent::PluginAdded { plugin, .. } => {
            tracing::info!(plugin = %plugin, "added by a reload");
        }
        RegistryEvent::PluginRemoved { plugin, .. } => {
            tracing::info!(plugin = %plugin, "removed by a reload");
        }
        RegistryEvent::Registered {
            plugin, kind, key, ..
        } => {
            tracing::debug!(plugin = %plugin, kind = ?kind, key = %key, "registered");
        }
        RegistryEvent::Unregistered {
            plugin, kind, key, ..
        } => {
            tracing::info!(plugin = %plugin, kind = ?kind, key = %key, "unregistered after a restart");
        }
        RegistryEvent::Changed {
            plugin, kind, key, ..
        } => {
            tracing::info!(plugin = %plugin, kind = ?kind, key = %key, "registration changed after a restart");
        }
        other => tracing::debug!(event = ?other, "registry event"),
    }
}

pub(crate) fn call(args: &CallArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log, "warn");
    let input = match &args.args {
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .with_context(|| format!("--args is not valid JSON: {text}"))?,
        ),
        None => None,
    };
    let mut context: CallContext = match &args.context {
        Some(text) => serde_json::from_str(text)
            .with_context(|| format!("--context is not a call context: {text}"))?,
        None => CallContext::default(),
    };
    context.is_authorized_sender.get_or_insert(true);
    let kind = outpost_supervisor::CallKind::from(args.kind);
    if kind.takes_operation() && args.operation.is_none() {
        let word = args
            .kind
            .to_possible_value()
            .expect("no variant is skipped");
        anyhow::bail!("`outpost call {}` needs --operation NAME", word.get_name());
    }
    let mut call = Call::from_parts(kind, &args.name, input, args.operation.as_deref())
        .map_err(|error| anyhow::anyhow!("{}", error.message))?
        .with_context(context)
        // The operator at the console passed the gateway's authentication.
        .gateway_authenticated(true);
    if let Some(ms) = args.timeout_ms {
        call = call.with_timeout(Duration::from_millis(ms));
    }
    let inventory = load(&args.config)?;
    // Only the plugins whose manifest does not rule out owning the call.
    let key = call.registration_key();
    let specs: Vec<PluginSpec> = inventory
        .plugin_specs()
        .into_iter()
        .filter(|spec| {
            key.as_ref()
                .is_none_or(|(kind, key)| spec.claims(*kind, key) != Some(false))
        })
        .collect();
    if specs.is_empty() {
        anyhow::bail!(
            "no enabled, runnable plugin can own {} `{}`; `outpost plugins list --config {}` shows what runs",
            call.kind(),
            args.name,
            args.config.display()
        );
    }
    let settle = specs
        .iter()
        .map(|spec| Duration::from_millis(spec.launch.policy.timeouts.handshake_ms))
        .max()
        .unwrap_or_default()
        + SETTLE_MARGIN;
    runtime()?.block_on(async move {
        let supervisor = Supervisor::start(specs)?;
        supervisor.wait_settled(settle).await;
        let outcome = supervisor.call(call).await;
        supervisor.shutdown().await;
        match outcome {
            Ok(answer) => {
                println!("{}", serde_json::to_string_pretty(&answer.into_value())?);
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("error: {error}");
                if let Some(data) = &error.data {
                    eprintln!("{}", serde_json::to_string_pretty(data)?);
                }
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
