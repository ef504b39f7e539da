//! The `outpost` command: parsing, logging setup, dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod api;
mod call;
mod client;
mod logging;
mod new;
mod openclaw;
mod plugins;
mod registry_file;
mod remote;
mod routes;
mod serve;
mod server;

/// Outpost runs gateway plugins out of process and supervises them.
#[derive(Debug, Parser)]
#[command(name = "outpost", version = version(), about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every enabled plugin and the gateway API until SIGTERM or SIGINT, then stop
    /// them all; SIGHUP reloads the config.
    Serve(serve::ServeArgs),
    /// Call one registration through the running `outpost serve` and print the result
    /// as JSON (or, with --standalone, start the plugins for this one call).
    Call(call::CallArgs),
    /// The plugins the running `outpost serve` supervises: states, pids, uptimes,
    /// restarts.
    Status(remote::StatusArgs),
    /// Make the running `outpost serve` read its config again and apply it.
    Reload(remote::ReloadArgs),
    /// Inspect discovered plugins without running them.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Write a new plugin from a template.
    #[command(subcommand)]
    New(new::NewCommand),
    /// Connect an OpenClaw gateway to `outpost serve` through the bridge plugin.
    #[command(subcommand)]
    Openclaw(openclaw::OpenclawCommand),
}

fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} (plugin protocol {})",
            env!("CARGO_PKG_VERSION"),
            outpost_protocol::PROTOCOL_VERSION
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(&args),
        Command::Call(args) => call::call(&args),
        Command::Status(args) => remote::status(&args),
        Command::Reload(args) => remote::reload(&args),
        Command::Plugins(command) => plugins::run(command),
        Command::New(command) => new::run(command),
        Command::Openclaw(command) => openclaw::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
