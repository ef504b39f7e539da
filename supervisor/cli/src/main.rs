//! The `outpost` command: parsing, logging setup, dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod new;
mod plugins;
mod serve;

/// Outpost runs gateway plugins out of process and supervises them.
#[derive(Debug, Parser)]
#[command(name = "outpost", version = version(), about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every enabled plugin until SIGTERM or SIGINT, then stop them all.
    Serve(serve::ServeArgs),
    /// Start the plugins that can own one registration, call it once, print the
    /// result as JSON, stop them.
    Call(serve::CallArgs),
    /// Inspect discovered plugins without running them.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Write a new plugin from a template.
    #[command(subcommand)]
    New(new::NewCommand),
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
        Command::Call(args) => serve::call(&args),
        Command::Plugins(command) => plugins::run(command),
        Command::New(command) => new::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
