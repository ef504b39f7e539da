//! `outpost serve`: every enabled, runnable plugin of the config, supervised until
//! SIGTERM or SIGINT, and the gateway API over them.
//!
//! It logs each plugin's state changes, serves the API (docs/gateway-api.md) on
//! `outpost.api.listen` (or `--api-listen`), plugin HTTP routes on
//! `outpost.http.listen` when set, and reloads the config on SIGHUP as `config.reload`
//! does. On SIGTERM or SIGINT it stops every plugin with the stop escalation and exits
//! 0; a second signal during the stop kills every plugin's process group at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use outpost_supervisor::{PluginState, RegistryEvent, Supervisor};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::api::gateway::{Remote, RemoteGateway};
use crate::api::token;
use crate::logging::{self, LogArgs};
use crate::routes;
use crate::server::State;

/// How long the first start may take before `/readyz` says ready anyway.
const FIRST_START: Duration = Duration::from_mins(10);

/// At SIGTERM or SIGINT, how long the API's calls in flight have to finish, with their
/// plugins still running, before the plugins are stopped.
const API_DRAIN: Duration = Duration::from_secs(5);

/// Once the plugins are stopped, how long the answers of calls they cut short (and any
/// other last answer) have to reach their clients before the process exits.
const API_FLUSH: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file (JSON5).
    #[arg(long, value_name = "FILE", env = crate::client::CONFIG_ENV, default_value_os_t = crate::client::default_config())]
    config: PathBuf,
    /// Where the gateway API listens (default: outpost.api.listen, else 127.0.0.1:7777).
    #[arg(long, value_name = "ADDR")]
    api_listen: Option<SocketAddr>,
    #[command(flatten)]
    log: LogArgs,
}

pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    logging::init(&args.log, "info");
    let inventory = logging::load(&args.config)?;
    let mut settings = inventory.config.outpost.clone();
    if let Some(address) = args.api_listen {
        settings.api_listen = address;
    }
    let specs = inventory.plugin_specs();
    if specs.is_empty() {
        tracing::warn!(
            config = %inventory.config.path.display(),
            "no plugin is enabled and runnable; `outpost plugins list --config {}` says why",
            args.config.display()
        );
    }
    logging::runtime()?.block_on(async move {
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;

        // Bind first: a taken port is an error before any plugin starts.
        let api_listener = crate::api::bind(settings.api_listen).await?;
        // Port 0 asks for any free port: from here on, the one bound (in the log, the
        // registry file, and the default names of the token and registry files).
        if let Ok(bound) = api_listener.local_addr() {
            settings.api_listen = bound;
        }
        let routes_listener = match settings.http_listen {
            Some(address) => Some(routes::bind(address).await?),
            None => None,
        };
        let (token, source) = token::for_server(&settings)?;

        let gateway = Arc::new(RemoteGateway::default());
        let mut builder = Supervisor::builder().gateway(Remote(gateway.clone()));
        if settings.metrics_sample_ms > 0 {
            builder = builder.sample_resources(Duration::from_millis(settings.metrics_sample_ms));
        }
        let supervisor = builder.start(specs)?;
        let plugins = supervisor.snapshot().plugins.len();
        let state = State::new(supervisor, inventory, gateway, token);
        let (_, mut events) = state.supervisor.subscribe();

        let api = crate::api::serve(api_listener, state.clone());
        let registry_file = token::registry_file(&settings)?;
        crate::registry_file::keep(
            state.clone(),
            registry_file.clone(),
            format!("http://{}", settings.api_listen),
        );
        tracing::info!(registry_file = %registry_file.display(), "the registry is kept in the registry file");
        match &source {
            token::Source::Generated(path) => tracing::info!(
                token_file = %path.display(),
                "gateway API on http://{0} (WebSocket ws://{0}); the bearer token is in the token file",
                settings.api_listen
            ),
            token::Source::Environment => tracing::info!(
                "gateway API on http://{0} (WebSocket ws://{0}); the bearer token is {1}",
                settings.api_listen,
                token::TOKEN_VARIABLE
            ),
            token::Source::Config => tracing::info!(
                "gateway API on http://{0} (WebSocket ws://{0}); the bearer token is outpost.api.token",
                settings.api_listen
            ),
        }
        let stop_routes = CancellationToken::new();
        if let (Some(listener), Some(address)) = (routes_listener, settings.http_listen) {
            routes::serve(listener, state.clone(), settings.http_max_body_bytes, stop_routes.clone());
            tracing::info!("plugin HTTP routes on http://{address}");
        }
        tracing::info!(plugins, "supervising");
        {
            let state = state.clone();
            tokio::spawn(async move {
                state.supervisor.wait_settled(FIRST_START).await;
                state.mark_settled();
            });
        }

        let mut events_open = true;
        let signal = loop {
            tokio::select! {
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
                _ = hangup.recv() => reload(&state).await,
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
        stop_routes.cancel();
        // No new connection or request; the calls in flight finish while their plugins
        // still run, and their answers reach the clients.
        let _ = api.stop();
        tokio::select! {
            _ = tokio::time::timeout(API_DRAIN, api.clone().stopped()) => {}
            _ = terminate.recv() => return Ok(forced(state)),
            _ = interrupt.recv() => return Ok(forced(state)),
        }
        tokio::select! {
            () = state.supervisor.shutdown() => {
                let _ = tokio::time::timeout(API_FLUSH, api.stopped()).await;
                tracing::info!("every plugin stopped; exiting");
                Ok(ExitCode::SUCCESS)
            }
            _ = terminate.recv() => Ok(forced(state)),
            _ = interrupt.recv() => Ok(forced(state)),
        }
    })
}

/// SIGHUP: the config is read again and applied, as `outpost reload` does.
async fn reload(state: &State) {
    tracing::info!("SIGHUP: reloading {}", state.config_path.display());
    match state.reload().await {
        Ok(reloaded) => tracing::info!(
            started = ?reloaded.applied.started,
            restarted = ?reloaded.applied.restarted,
            stopped = ?reloaded.applied.stopped,
            retried = ?reloaded.retried,
            restart_needed = ?reloaded.restart_needed,
            "config reloaded"
        ),
        Err(error) => tracing::error!("{error}; the running plugins are as they were"),
    }
}

/// The second signal: returning drops the runtime and with it every runner task,
/// whose process-group guards SIGKILL every plugin's group.
fn forced(state: Arc<State>) -> ExitCode {
    tracing::warn!("second signal: killing every plugin's process group");
    drop(state);
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
                    format!(
                        "{reason}; fix the cause, then `outpost reload` (or `outpost plugins restart {plugin}`)"
                    )
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
            plugin,
            kind,
            key,
            replaces: Some(loser),
            ..
        } => {
            tracing::info!(plugin = %plugin, kind = ?kind, key = %key, "registered, taking it from `{loser}`, which comes later in discovery order");
        }
        RegistryEvent::Registered {
            plugin, kind, key, ..
        } => {
            tracing::debug!(plugin = %plugin, kind = ?kind, key = %key, "registered");
        }
        RegistryEvent::Unregistered {
            plugin, kind, key, ..
        } => {
            tracing::info!(plugin = %plugin, kind = ?kind, key = %key, "unregistered");
        }
        RegistryEvent::Changed {
            plugin, kind, key, ..
        } => {
            tracing::info!(plugin = %plugin, kind = ?kind, key = %key, "registration changed");
        }
        other => tracing::debug!(event = ?other, "registry event"),
    }
}
