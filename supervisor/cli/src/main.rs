//! The `outpost` command: parsing, logging setup, dispatch.
//!
//! Exit status, for every command: 0 done; 1 failed (for `call`: the call failed);
//! 2 the command line is wrong; 3 `call` only: the tool answered with
//! `isError: true`. A closed standard output (`outpost ... | head`) ends a command
//! quietly with status 0.

use std::any::Any;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod api;
mod call;
mod client;
mod interpreters;
mod logging;
mod new;
mod openclaw;
mod plugin_admin;
mod plugins;
mod registry_file;
mod remote;
mod routes;
mod serve;
mod server;

/// Outpost runs gateway plugins out of process and supervises them.
#[derive(Debug, Parser)]
#[command(name = "outpost", version = version(), about, long_about = None, after_help = AFTER_HELP)]
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
    /// Print the shell completion script for `outpost`, e.g.
    /// `outpost completions bash > ~/.local/share/bash-completion/completions/outpost`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page of `outpost` (roff), or write one page per command into a
    /// directory with --dir.
    Man {
        /// Write `outpost.1`, `outpost-serve.1`, ... into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Shown under every `--help` of `outpost` itself.
const AFTER_HELP: &str = "\
The config file: --config FILE, else $OUTPOST_CONFIG, else ./outpost.json5 when it exists,
else $XDG_CONFIG_HOME/outpost/outpost.json5 (~/.config/outpost/outpost.json5).

Exit status: 0 done; 1 failed (for `call`: the call failed); 2 the command line is
wrong; 3 `call` only: the tool answered with isError: true (the result is printed).
A closed standard output (`outpost ... | head`) ends any command quietly with 0.";

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
    quiet_when_stdout_closes();
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(code) => code,
        Err(payload) if stdout_closed(payload.as_ref()) => ExitCode::SUCCESS,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve::serve(&args),
        Command::Call(args) => call::call(&args),
        Command::Status(args) => remote::status(&args),
        Command::Reload(args) => remote::reload(&args),
        Command::Plugins(command) => plugins::run(command),
        Command::New(command) => new::run(command),
        Command::Openclaw(command) => openclaw::run(command),
        Command::Completions { shell } => completions(shell),
        Command::Man { dir } => man(dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.chain().any(|cause| {
                matches!(
                    cause.downcast_ref(),
                    Some(outpost_supervisor::control::ConfigError::NotFound { .. })
                )
            }) {
                eprintln!(
                    "note: without --config, outpost reads $OUTPOST_CONFIG, else ./outpost.json5, else\n      \
                     $XDG_CONFIG_HOME/outpost/outpost.json5 (~/.config/outpost/outpost.json5)"
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "outpost", &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn man(dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let command = Cli::command();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    } else {
        let mut out = Vec::new();
        clap_mangen::Man::new(command).render(&mut out)?;
        std::io::stdout().lock().write_all(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `println!` panics when standard output is a pipe whose reader has gone
/// (`outpost plugins list | head`): that panic says nothing, and `main` turns it into a
/// quiet exit 0. Other panics are reported as usual.
fn quiet_when_stdout_closes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !stdout_closed(info.payload()) {
            report(info);
        }
    }));
}

/// Whether a panic is `print!`'s on a closed standard output.
fn stdout_closed(payload: &(dyn Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    message.is_some_and(|message| {
        message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
    })
}

/// Whether an error is a write to a closed pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}
