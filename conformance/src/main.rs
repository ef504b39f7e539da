//! `outpost-conformance`: run the Outpost protocol conformance suite against a plugin.
//!
//! Exit status: 0 when no MUST check failed (outside the baseline), no baseline entry is
//! stale and, with `--strict`, no SHOULD check failed; 1 otherwise; 2 when the suite could not run (bad arguments, an unusable
//! manifest, a program that cannot be started); 130 when interrupted.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use outpost_conformance::{
    CHECKS, CheckResult, ExpectedFailures, FAMILIES, Options, Report, SlowCall, Target,
    markdown_table, render_row, run,
};

#[derive(Debug, Parser)]
#[command(
    name = "outpost-conformance",
    version,
    about = "Checks that a plugin speaks the Outpost plugin protocol correctly",
    long_about = "Checks that a plugin speaks the Outpost plugin protocol (docs/protocol.md) correctly.\n\nThe suite starts the plugin as the Outpost host would, drives it through the protocol, and reports every check with its id, level (MUST fails the run, SHOULD warns) and the section of the spec it enforces. See docs/conformance.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suite against a plugin directory or a command.
    Run(Box<RunArgs>),
    /// Print every check: id, level, section and description.
    List {
        /// One JSON array instead of a table.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// The Markdown tables of docs/conformance.md §4, one per family.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["plugin_dir", "command"])))]
struct RunArgs {
    /// A plugin root: its openclaw.plugin.json `outpost` block says how to start it.
    #[arg(long, value_name = "DIR")]
    plugin_dir: Option<PathBuf>,
    /// The plugin's command and arguments, after `--` (started in the current directory).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Print one JSON document on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report (one test case per check) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Check ids the plugin is known to fail, one per line (`#` comments): they do not
    /// fail the run; a listed check that passes does (stale entry).
    #[arg(long, value_name = "FILE")]
    expected_failures: Option<PathBuf>,
    /// The plugin config, a JSON object (the manifest's schema defaults fill the rest).
    #[arg(long, value_name = "JSON")]
    config_json: Option<String>,
    /// The plugin id (checked against `plugin.id`); the manifest's id with --plugin-dir.
    #[arg(long, value_name = "ID")]
    plugin_id: Option<String>,
    /// A directory searched before PATH for the plugin's command (repeatable).
    #[arg(long, value_name = "DIR")]
    bin_path: Vec<PathBuf>,
    /// Seconds any one step may take.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    /// Seconds `initialize` may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    handshake_timeout: f64,
    /// Run only these checks or families (repeatable, or comma-separated).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    only: Vec<String>,
    /// Write every line exchanged with the plugin, with timestamps, to FILE.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// A slow, side-effect-free call that takes a second or more, for the concurrency,
    /// cancellation and reused-id checks: 'KIND NAME JSON_ARGS', e.g.
    /// 'tool slow {"ms":3000}' (docs/conformance.md §2).
    #[arg(long, value_name = "'KIND NAME JSON_ARGS'", value_parser = SlowCall::from_str)]
    slow_call: Option<SlowCall>,
    /// Warnings (failed SHOULD checks outside the baseline) fail the run too.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List { json, markdown } => list(json, markdown).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run_command(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(anstream::stderr(), "outpost-conformance: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn list(json: bool, markdown: bool) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    if markdown {
        for (index, family) in FAMILIES.iter().enumerate() {
            if index > 0 {
                writeln!(out)?;
            }
            writeln!(out, "### {family}\n")?;
            write!(out, "{}", markdown_table(family))?;
        }
        return Ok(());
    }
    if json {
        let checks: Vec<_> = CHECKS
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id, "family": c.family(), "level": c.level,
                    "section": c.section, "description": c.description,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&checks)?)?;
        return Ok(());
    }
    for check in CHECKS {
        writeln!(
            out,
            "{:<34} {:<6} {:<5} {}",
            check.id,
            check.level.to_string(),
            check.section,
            check.description
        )?;
    }
    Ok(())
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{flag} must be a positive number of seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

fn run_command(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let baseline = match &args.expected_failures {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the expected-failures file {}", path.display())
            })?;
            Some(ExpectedFailures::parse(&text, &path.display().to_string())?)
        }
        None => None,
    };
    let config = match &args.config_json {
        Some(text) => Some(
            serde_json::from_str(text)
                .with_context(|| format!("--config-json is not valid JSON: {text}"))?,
        ),
        None => None,
    };
    let options = Options {
        plugin_id: args.plugin_id.clone(),
        config,
        bin_path: args.bin_path.clone(),
        step_timeout: seconds(args.timeout, "--timeout")?,
        handshake_timeout: seconds(args.handshake_timeout, "--handshake-timeout")?,
        only: args.only.clone(),
        transcript: args.transcript.clone(),
        slow_call: args.slow_call.clone(),
        ..Options::default()
    };
    let target = match &args.plugin_dir {
        Some(dir) => Target::PluginDir(dir.clone()),
        None => Target::Command(args.command.clone()),
    };

    let json = args.json;
    let header = match &target {
        Target::PluginDir(dir) => format!("plugin directory {}", dir.display()),
        Target::Command(words) => format!("`{}`", words.join(" ")),
    };
    let mut progress_out: Box<dyn Write> = if json {
        Box::new(anstream::stderr())
    } else {
        Box::new(anstream::stdout())
    };
    writeln!(
        progress_out,
        "outpost-conformance {} (protocol {}): testing {header}",
        env!("CARGO_PKG_VERSION"),
        outpost_protocol_version()
    )?;
    let mut progress = |result: &CheckResult| {
        let _ = render_row(result, &mut progress_out);
        let _ = progress_out.flush();
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        // Dropping the run on a signal drops its sessions, whose guards kill every
        // plugin process group.
        tokio::select! {
            report = run(&target, &options, &mut progress) => Ok(Some(report)),
            _ = tokio::signal::ctrl_c() => Ok::<_, anyhow::Error>(None),
            _ = terminate.recv() => Ok(None),
        }
    })?;
    drop(progress_out);
    let Some(report) = outcome else {
        let _ = writeln!(
            anstream::stderr(),
            "outpost-conformance: interrupted; the plugin's processes were killed"
        );
        return Ok(ExitCode::from(130));
    };
    let mut report: Report = report?;
    if let Some(baseline) = &baseline {
        report.apply_baseline(baseline);
    }
    report.strict = args.strict;
    if let Some(path) = &args.junit {
        std::fs::write(path, report.to_junit())
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    if json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?;
    } else {
        report.render_summary(&mut anstream::stdout().lock())?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn outpost_protocol_version() -> &'static str {
    outpost_protocol::PROTOCOL_VERSION
}
