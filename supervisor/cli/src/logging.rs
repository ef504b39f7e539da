//! Logging on stderr, and what every command that runs plugins shares.

use std::io::IsTerminal;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use outpost_supervisor::control::{self, Inventory, Severity, Status};

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
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

pub(crate) fn init(args: &LogArgs, default_level: &str) {
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

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// Loads the config and logs what will not run and why.
pub(crate) fn load(config: &std::path::Path) -> anyhow::Result<Inventory> {
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
