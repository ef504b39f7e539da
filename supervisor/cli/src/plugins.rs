//! `outpost plugins list|inspect|validate|doctor`: the control plane on the command line.
//! Nothing here runs plugin code. Human output is aligned tables, coloured only on a
//! terminal; `--json` prints the shapes documented in docs/operators.md.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};
use clap::{Args, Subcommand};
use outpost_supervisor::control::{
    self, Diagnostic, DoctorReport, InspectReport, Inventory, ListRow, Severity, Status,
    ValidateReport, Verdict,
};
use outpost_supervisor::shown::escaped;
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub(crate) enum PluginsCommand {
    /// One row per discovered plugin: its status and why.
    List(Common),
    /// Everything known about one plugin: manifest, enablement, launch, config.
    #[command(visible_alias = "info")]
    Inspect {
        /// The plugin id.
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Check the config file and every plugin's config; exit 1 on any error.
    Validate(Common),
    /// Errors, blocked candidates, shadowing and advisories; exit 1 when something
    /// needs action. Warns when an enabled plugin's interpreter (python3, node) is
    /// older than Python 3.11 or Node.js 20.
    Doctor(Common),
    /// Turn a plugin on: `plugins.entries.<id>.enabled = true` in the config file, edited
    /// in place (comments and formatting kept); a set plugins.allow gets the id too.
    Enable(crate::plugin_admin::IdArgs),
    /// Turn a plugin off: `plugins.entries.<id>.enabled = false`, edited in place.
    Disable(crate::plugin_admin::IdArgs),
    /// Copy a plugin directory or unpack a .tgz/.tar.gz/.zip into the global extensions
    /// directory, after the safety gates and validation; install scripts are refused.
    Install(crate::plugin_admin::InstallArgs),
    /// Remove a plugin installed in the global extensions directory.
    Uninstall(crate::plugin_admin::IdArgs),
    /// Install a plugin again from the source it was installed from.
    Update(crate::plugin_admin::IdArgs),
    /// Restart one plugin of the running `outpost serve` (a failed one gets a fresh
    /// crash history).
    Restart(crate::remote::OrderArgs),
    /// Stop one plugin of the running `outpost serve` until it is started again.
    Stop(crate::remote::OrderArgs),
    /// Start a stopped or failed plugin of the running `outpost serve`.
    Start(crate::remote::OrderArgs),
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The config file (JSON5).
    #[arg(long, value_name = "FILE", env = crate::client::CONFIG_ENV, default_value_os_t = crate::client::default_config())]
    config: PathBuf,
    /// Print JSON (the shapes in docs/operators.md) instead of tables.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match execute(command) {
        // `outpost plugins list | head`: the reader has all it wants.
        Err(error) if is_broken_pipe(&error) => Ok(ExitCode::SUCCESS),
        result => result,
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    let kind = error
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind)
        .or_else(|| {
            error
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
        });
    kind == Some(std::io::ErrorKind::BrokenPipe)
}

fn execute(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    let mut out = anstream::stdout().lock();
    match command {
        PluginsCommand::List(common) => {
            let inventory = control::load(&common.config)?;
            let rows = ListRow::all(&inventory);
            if common.json {
                print_json(&mut out, &rows)?;
            } else {
                print_list(&mut out, &inventory, &rows)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Inspect { id, common } => {
            let inventory = control::load(&common.config)?;
            inspect(&mut out, &inventory, &common.config, &id, common.json)
        }
        PluginsCommand::Validate(common) => {
            let report = match control::load(&common.config) {
                Ok(inventory) => ValidateReport::new(&inventory),
                Err(error) => ValidateReport::unreadable(&common.config, &error),
            };
            if common.json {
                print_json(&mut out, &report)?;
            } else {
                print_validate(&mut out, &report)?;
            }
            Ok(exit(report.valid))
        }
        PluginsCommand::Doctor(common) => {
            let report = match control::load(&common.config) {
                Ok(inventory) => {
                    let mut report = DoctorReport::new(&inventory);
                    report
                        .warnings
                        .extend(crate::interpreters::check(&inventory));
                    report
                }
                Err(error) => DoctorReport::unreadable(&common.config, &error),
            };
            if common.json {
                print_json(&mut out, &report)?;
            } else {
                print_doctor(&mut out, &report)?;
            }
            Ok(exit(report.ok))
        }
        PluginsCommand::Enable(args) => crate::plugin_admin::enable(&args),
        PluginsCommand::Disable(args) => crate::plugin_admin::disable(&args),
        PluginsCommand::Install(args) => crate::plugin_admin::install(&args),
        PluginsCommand::Uninstall(args) => crate::plugin_admin::uninstall(&args),
        PluginsCommand::Update(args) => crate::plugin_admin::update(&args),
        PluginsCommand::Restart(args) => crate::remote::order(crate::remote::Order::Restart, &args),
        PluginsCommand::Stop(args) => crate::remote::order(crate::remote::Order::Stop, &args),
        PluginsCommand::Start(args) => crate::remote::order(crate::remote::Order::Start, &args),
    }
}

fn exit(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn status_style(status: Status) -> Style {
    let color = match status {
        Status::Enabled => AnsiColor::Green,
        Status::Disabled => return DIM,
        Status::Invalid => AnsiColor::Yellow,
        Status::Missing => AnsiColor::Magenta,
        Status::Blocked | Status::Error => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into()))
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Error => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
        Severity::Warning => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Severity::Advisory => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
    }
}

/// A table: columns padded to their widest cell, the last column not padded.
struct Table {
    indent: &'static str,
    header: Vec<&'static str>,
    rows: Vec<Vec<(String, Style)>>,
}

impl Table {
    fn new(header: &[&'static str]) -> Self {
        Self {
            indent: "",
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// A table printed inside a section.
    fn indented(header: &[&'static str]) -> Self {
        Self {
            indent: "  ",
            ..Self::new(header)
        }
    }

    fn row(&mut self, cells: Vec<(String, Style)>) {
        self.rows.push(cells);
    }

    fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|title| title.chars().count())
            .collect();
        for row in &self.rows {
            for (width, (text, _)) in widths.iter_mut().zip(row) {
                *width = (*width).max(text.chars().count());
            }
        }
        let last = widths.len().saturating_sub(1);
        write!(out, "{}", self.indent)?;
        for (index, title) in self.header.iter().enumerate() {
            let pad = if index == last {
                0
            } else {
                widths[index] - title.chars().count() + 2
            };
            write!(out, "{BOLD}{title}{BOLD:#}{:pad$}", "")?;
        }
        writeln!(out)?;
        for row in &self.rows {
            write!(out, "{}", self.indent)?;
            for (index, (text, style)) in row.iter().enumerate() {
                let pad = if index == last {
                    0
                } else {
                    widths[index] - text.chars().count() + 2
                };
                write!(out, "{style}{text}{style:#}{:pad$}", "")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

fn plain(text: impl Into<String>) -> (String, Style) {
    (text.into(), Style::new())
}

fn or_dash(text: Option<&str>) -> String {
    text.map_or_else(|| "-".to_owned(), str::to_owned)
}

fn print_list(out: &mut impl Write, inventory: &Inventory, rows: &[ListRow]) -> anyhow::Result<()> {
    if rows.is_empty() {
        writeln!(
            out,
            "no plugins found (config {}; see docs/operators.md for where Outpost looks)",
            inventory.config.path.display()
        )?;
    } else {
        let mut table = Table::new(&["ID", "STATUS", "ORIGIN", "RUN", "VERSION", "REASON"]);
        for row in rows {
            table.row(vec![
                plain(&row.id),
                (row.status.to_string(), status_style(row.status)),
                plain(
                    row.origin
                        .map_or_else(|| "-".to_owned(), |origin| origin.to_string()),
                ),
                plain(if row.runnable { "yes" } else { "no" }),
                plain(or_dash(row.version.as_deref())),
                plain(&row.reason),
            ]);
        }
        table.print(out)?;
    }
    let (errors, warnings) = count(inventory.all_diagnostics());
    if errors + warnings > 0 {
        writeln!(
            out,
            "\n{errors} error{}, {warnings} warning{}: run `outpost plugins doctor` for details",
            plural(errors),
            plural(warnings)
        )?;
    }
    Ok(())
}

fn count<'a>(diagnostics: impl Iterator<Item = &'a Diagnostic>) -> (usize, usize) {
    diagnostics.fold((0, 0), |(errors, warnings), diagnostic| {
        match diagnostic.severity {
            Severity::Error => (errors + 1, warnings),
            Severity::Warning => (errors, warnings + 1),
            Severity::Advisory => (errors, warnings),
        }
    })
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn inspect(
    out: &mut impl Write,
    inventory: &Inventory,
    config: &std::path::Path,
    id: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // As typed, else whatever its case (`outpost plugins inspect Notes`).
    let id = inventory
        .get(id)
        .or_else(|| {
            let mut matching = inventory
                .plugins
                .iter()
                .filter(|record| record.id.eq_ignore_ascii_case(id));
            let first = matching.next()?;
            // Two ids that differ only in case: neither is guessed.
            matching.all(|other| other.id == first.id).then_some(first)
        })
        .map_or(id, |record| record.id.as_str());
    if let Some(report) = InspectReport::new(inventory, id) {
        // What it registered, from the `outpost serve` running this config, if any.
        let live = live_inspect(inventory, config, id);
        match (&live, json) {
            (Ok(answer), true) => print_json(out, answer)?,
            (Err(_), true) => print_json(out, &report)?,
            (live, false) => {
                print_inspect(out, &report)?;
                print_runtime(out, live)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(row) = ListRow::all(inventory)
        .into_iter()
        .find(|row| row.status == Status::Missing && row.id.eq_ignore_ascii_case(id))
    {
        if json {
            print_json(out, &row)?;
        } else {
            let style = status_style(Status::Missing);
            writeln!(
                out,
                "{BOLD}{}{BOLD:#}: {style}missing{style:#}: {}",
                row.id, row.reason
            )?;
        }
        return Ok(ExitCode::FAILURE);
    }
    let mut ids: Vec<&str> = inventory
        .plugins
        .iter()
        .map(|record| record.id.as_str())
        .collect();
    ids.dedup();
    let known = if ids.is_empty() {
        "no plugins were discovered".to_owned()
    } else {
        format!("discovered: {}", ids.join(", "))
    };
    anyhow::bail!("no plugin `{id}` ({known})")
}

/// `plugins.inspect` from the `outpost serve` that runs `config` (its `server.info`
/// names the same file), or why there is none.
fn live_inspect(
    inventory: &Inventory,
    config: &std::path::Path,
    id: &str,
) -> Result<serde_json::Value, String> {
    let client =
        crate::client::Client::new(&inventory.config.outpost, std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
    let ask = |method: &'static str, params: serde_json::Value| {
        crate::logging::runtime()
            .map_err(|e| e.to_string())?
            .block_on(client.request(method, params))
            .map_err(|failure| failure.to_string())
    };
    let info = ask("server.info", serde_json::json!({}))?;
    let same = |path: &std::path::Path| std::fs::canonicalize(path).ok();
    let theirs = info["configPath"].as_str().map(std::path::Path::new);
    if theirs.and_then(same).is_none() || theirs.and_then(same) != same(config) {
        return Err(format!(
            "the `outpost serve` at {} runs another config ({})",
            inventory.config.outpost.api_listen,
            theirs.map_or_else(|| "?".into(), |p| p.display().to_string())
        ));
    }
    ask("plugins.inspect", serde_json::json!({ "id": id }))
}

/// The running plugin: its state, shape, compatibility signals, what it registered and
/// what was refused; or why nothing runs it.
fn print_runtime(
    out: &mut impl Write,
    live: &Result<serde_json::Value, String>,
) -> anyhow::Result<()> {
    let runtime = match live {
        Ok(answer) if answer["runtime"].is_object() => &answer["runtime"],
        Ok(_) => {
            writeln!(
                out,
                "\n{BOLD}Runtime{BOLD:#}\n  the running `outpost serve` does not run it (see its status above)"
            )?;
            return Ok(());
        }
        Err(why) => {
            writeln!(
                out,
                "\n{BOLD}Runtime{BOLD:#}\n  {DIM}not running: {why}; what it registers, its shape and compatibility show while `outpost serve` runs it{DIM:#}"
            )?;
            return Ok(());
        }
    };
    // What the running plugin registered is the plugin's text: escaped, so it cannot
    // move the cursor or retitle the operator's terminal.
    let text = |value: &serde_json::Value| value.as_str().map_or_else(|| "-".to_owned(), escaped);
    writeln!(out, "\n{BOLD}Runtime{BOLD:#} (outpost serve)")?;
    let state = match runtime["pid"].as_u64() {
        Some(pid) => format!("{} (pid {pid})", text(&runtime["state"])),
        None => text(&runtime["state"]),
    };
    writeln!(out, "  {:<17} {state}", "state")?;
    writeln!(out, "  {:<17} {}", "shape", text(&runtime["shape"]))?;
    for signal in runtime["compatibility"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {:<17} {}: {}",
            "compatibility",
            text(&signal["signal"]),
            text(&signal["message"])
        )?;
    }
    let registrations = runtime["registrations"].as_array();
    if let Some(registrations) = registrations.filter(|r| !r.is_empty()) {
        writeln!(out, "\n{BOLD}Registered{BOLD:#}")?;
        let mut table = Table::indented(&["KIND", "KEY", "AVAILABLE"]);
        for registration in registrations {
            table.row(vec![
                plain(text(&registration["kind"])),
                plain(text(&registration["key"])),
                plain(
                    registration["available"]
                        .as_bool()
                        .unwrap_or(false)
                        .to_string(),
                ),
            ]);
        }
        table.print(out)?;
    }
    let rejected = runtime["rejected"].as_array();
    if let Some(rejected) = rejected.filter(|r| !r.is_empty()) {
        writeln!(out, "\n{BOLD}Rejected{BOLD:#}")?;
        let mut table = Table::indented(&["KIND", "KEY", "CODE", "REASON"]);
        for rejection in rejected {
            table.row(vec![
                plain(text(&rejection["kind"])),
                plain(text(&rejection["key"])),
                plain(text(&rejection["code"])),
                plain(text(&rejection["reason"])),
            ]);
        }
        table.print(out)?;
    }
    Ok(())
}

fn print_inspect(out: &mut impl Write, report: &InspectReport) -> anyhow::Result<()> {
    let style = status_style(report.status);
    let title = match (&report.name, &report.version) {
        (Some(name), Some(version)) => format!(" ({name} {version})"),
        (Some(name), None) => format!(" ({name})"),
        (None, Some(version)) => format!(" ({version})"),
        (None, None) => String::new(),
    };
    writeln!(out, "{BOLD}{}{BOLD:#}{title}", report.id)?;
    if let Some(description) = &report.description {
        writeln!(out, "  {description}")?;
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let kinds: Vec<String> = report
        .kind
        .iter()
        .map(|kind| kind.as_str().to_owned())
        .collect();
    let contracts: Vec<String> = report
        .contracts
        .iter()
        .map(|(key, ids)| format!("{key}: {}", ids.join(", ")))
        .collect();
    let facts = [
        (
            "status",
            format!("{style}{}{style:#}: {}", report.status, report.reason),
        ),
        ("origin", report.origin.to_string()),
        ("root", report.root.display().to_string()),
        ("source", report.source.display().to_string()),
        ("manifest", report.manifest_path.display().to_string()),
        ("kind", list(&kinds)),
        ("channels", list(&report.channels)),
        ("providers", list(&report.providers)),
        ("cli backends", list(&report.cli_backends)),
        (
            "contracts",
            if contracts.is_empty() {
                "-".to_owned()
            } else {
                contracts.join("; ")
            },
        ),
        ("skills", list(&report.skills)),
        ("categories", list(&report.categories)),
        ("requires", list(&report.requires_plugins)),
        (
            "prompt injection",
            if report.allow_prompt_injection {
                "allowed"
            } else {
                "blocked (hooks.allowPromptInjection: false)"
            }
            .to_owned(),
        ),
    ];
    for (label, value) in facts {
        writeln!(out, "  {label:<17} {value}")?;
    }
    if let Some(by) = &report.shadowed_by {
        writeln!(out, "  {:<17} {}", "shadowed by", by.display())?;
    }
    for copy in &report.other_copies {
        writeln!(
            out,
            "  {:<17} {} ({}, {}: {})",
            "other copy",
            copy.source.display(),
            copy.origin,
            copy.status,
            copy.reason
        )?;
    }

    if let Some(enablement) = &report.enablement {
        writeln!(out, "\n{BOLD}Enablement{BOLD:#}")?;
        let mut table = Table::indented(&["VERDICT", "RULE", "DETAIL"]);
        for step in &enablement.trace {
            let (verdict, style) = match step.verdict {
                Verdict::Pass => ("pass", DIM),
                Verdict::Enable => ("enable", status_style(Status::Enabled)),
                Verdict::Disable => ("disable", status_style(Status::Error)),
            };
            table.row(vec![
                (verdict.to_owned(), style),
                plain(&step.rule),
                plain(&step.detail),
            ]);
        }
        table.print(out)?;
    }

    if let Some(schema) = &report.config_schema {
        writeln!(out, "\n{BOLD}Config schema{BOLD:#}")?;
        if schema.properties.is_empty() {
            writeln!(out, "  no properties")?;
        } else {
            let mut table = Table::indented(&["KEY", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"]);
            for property in &schema.properties {
                table.row(vec![
                    plain(&property.name),
                    plain(
                        property
                            .type_
                            .as_ref()
                            .map_or_else(|| "-".to_owned(), compact),
                    ),
                    plain(if property.required { "yes" } else { "no" }),
                    plain(
                        property
                            .default
                            .as_ref()
                            .map_or_else(|| "-".to_owned(), compact),
                    ),
                    plain(or_dash(property.description.as_deref())),
                ]);
            }
            table.print(out)?;
        }
        if schema.additional_properties == Some(false) {
            writeln!(
                out,
                "  other keys are refused (additionalProperties: false)"
            )?;
        }
    }

    writeln!(out, "\n{BOLD}Launch{BOLD:#}")?;
    match &report.launch {
        Some(launch) => {
            let env_set: Vec<String> = launch
                .env_set
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let policy = &launch.policy;
            let rows = [
                ("program", launch.program.display().to_string()),
                (
                    "args",
                    if launch.args.is_empty() {
                        "-".to_owned()
                    } else {
                        launch.args.join(" ")
                    },
                ),
                ("working dir", launch.root.display().to_string()),
                ("env passthrough", list(&launch.env_passthrough)),
                ("env set", list(&env_set)),
                (
                    "timeouts",
                    format!(
                        "handshake {} ms, call {} ms",
                        policy.timeouts.handshake_ms, policy.timeouts.call_ms
                    ),
                ),
                (
                    "health",
                    format!(
                        "ping every {} ms, {} ms timeout, {} misses",
                        policy.health.interval_ms, policy.health.timeout_ms, policy.health.misses
                    ),
                ),
                (
                    "restart",
                    if policy.restart.enabled {
                        format!(
                            "backoff {}..{} ms, give up after {} crashes in {} ms",
                            policy.restart.initial_backoff_ms,
                            policy.restart.max_backoff_ms,
                            policy.restart.max_crashes,
                            policy.restart.window_ms
                        )
                    } else {
                        "never".to_owned()
                    },
                ),
                (
                    "limits",
                    format!(
                        "{} concurrent, {} queued, {} bytes per message",
                        policy.limits.max_concurrent_requests,
                        policy.limits.max_queued_requests,
                        policy.limits.max_message_bytes
                    ),
                ),
            ];
            for (label, value) in rows {
                writeln!(out, "  {label:<17} {value}")?;
            }
            if let Some(isolation) = &report.isolation {
                writeln!(
                    out,
                    "  {:<17} {}",
                    "sandbox",
                    sandbox_line(launch, isolation)
                )?;
            }
        }
        None => writeln!(
            out,
            "  not runnable: {}",
            report.not_runnable_reason.as_deref().unwrap_or("unknown")
        )?,
    }

    writeln!(
        out,
        "\n{BOLD}Config{BOLD:#} (defaults applied, secrets redacted)"
    )?;
    let config = serde_json::to_string_pretty(&report.config)?;
    for line in config.lines() {
        writeln!(out, "  {line}")?;
    }

    writeln!(out, "\n{BOLD}Diagnostics{BOLD:#}")?;
    if report.diagnostics.is_empty() {
        writeln!(out, "  none")?;
    }
    for diagnostic in &report.diagnostics {
        write!(out, "  ")?;
        print_diagnostic(out, diagnostic)?;
    }
    Ok(())
}

/// A JSON value on one line.
fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn print_diagnostic(out: &mut impl Write, diagnostic: &Diagnostic) -> std::io::Result<()> {
    let style = severity_style(diagnostic.severity);
    write!(out, "{style}{}{style:#}: ", diagnostic.severity)?;
    if let Some(file) = &diagnostic.file {
        write!(out, "{}: ", file.display())?;
    }
    if let Some(path) = &diagnostic.path {
        write!(out, "{BOLD}{path}{BOLD:#}: ")?;
    }
    writeln!(out, "{}", diagnostic.message)
}

fn print_validate(out: &mut impl Write, report: &ValidateReport) -> anyhow::Result<()> {
    for problem in &report.problems {
        print_diagnostic(out, problem)?;
    }
    if report.valid {
        let style = status_style(Status::Enabled);
        write!(out, "{style}config is valid{style:#}")?;
        if report.warnings > 0 {
            write!(
                out,
                " ({} warning{})",
                report.warnings,
                plural(report.warnings)
            )?;
        }
        writeln!(out, ": {}", report.config.display())?;
    } else {
        let style = severity_style(Severity::Error);
        writeln!(
            out,
            "{style}config is invalid{style:#}: {} error{}, {} warning{} in {}",
            report.errors,
            plural(report.errors),
            report.warnings,
            plural(report.warnings),
            report.config.display()
        )?;
    }
    Ok(())
}

/// One plugin's planned confinement, as `inspect` shows it.
fn sandbox_line(
    launch: &outpost_supervisor::LaunchSpec,
    isolation: &outpost_supervisor::isolation::PlannedIsolation,
) -> String {
    use outpost_supervisor::isolation::{Containment, FilesystemSandbox};
    let mut parts = vec![
        match isolation.containment {
            Containment::Namespaces => "own namespaces".to_owned(),
            _ => "process group only".to_owned(),
        },
        match isolation.filesystem {
            FilesystemSandbox::Enforced => "filesystem enforced",
            FilesystemSandbox::Partial => "filesystem partial",
            FilesystemSandbox::Unavailable => "filesystem unavailable",
            _ => "filesystem off",
        }
        .to_owned(),
    ];
    if let Some(access) = &launch.sandbox.filesystem {
        let show = |paths: &[std::path::PathBuf]| {
            paths
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !access.read.is_empty() {
            parts.push(format!("reads {}", show(&access.read)));
        }
        if !access.write.is_empty() {
            parts.push(format!("writes {}", show(&access.write)));
        }
    }
    if let Some(user) = &isolation.user {
        parts.push(format!("as {user}"));
    }
    parts.join("; ")
}

/// What confines plugins on this host, as `doctor` shows it first.
fn print_isolation(
    out: &mut impl Write,
    host: &outpost_supervisor::isolation::HostIsolation,
) -> anyhow::Result<()> {
    use outpost_supervisor::isolation::{Containment, FilesystemSandbox};
    writeln!(out, "{BOLD}Isolation{BOLD:#} (docs/isolation.md)")?;
    match host.containment {
        Containment::Namespaces => writeln!(
            out,
            "  containment: own PID and mount namespaces{}: nothing a plugin starts outlives it",
            if host.running_as_root {
                ""
            } else {
                " (in a user namespace)"
            }
        )?,
        _ => writeln!(
            out,
            "  containment: a process group only ({}): a process that calls setsid can outlive its plugin",
            host.namespaces
                .reason
                .as_deref()
                .unwrap_or("namespaces refused")
        )?,
    }
    let abi = host
        .landlock_abi
        .map(|abi| format!(" (Landlock ABI {abi})"))
        .unwrap_or_default();
    match host.filesystem {
        FilesystemSandbox::Enforced => writeln!(out, "  filesystem sandbox: enforced{abi}")?,
        FilesystemSandbox::Partial => writeln!(
            out,
            "  filesystem sandbox: partial{abi}: {}",
            host.filesystem_detail
                .as_deref()
                .unwrap_or("some rights are not restricted")
        )?,
        _ => writeln!(
            out,
            "  filesystem sandbox: unavailable: {}",
            host.filesystem_detail
                .as_deref()
                .unwrap_or("the kernel has no Landlock")
        )?,
    }
    if host.running_as_root {
        writeln!(
            out,
            "  user: outpost runs as root; plugins run as outpost.sandbox.user (or their own sandbox.user)"
        )?;
    } else {
        writeln!(out, "  user: plugins run as outpost's own user")?;
    }
    Ok(())
}

fn print_doctor(out: &mut impl Write, report: &DoctorReport) -> anyhow::Result<()> {
    print_isolation(out, &report.isolation)?;
    writeln!(out)?;
    let sections = [
        ("Errors", &report.errors),
        ("Blocked candidates", &report.blocked),
        ("Shadowing", &report.shadowing),
        ("Warnings", &report.warnings),
        ("Compatibility advisories", &report.advisories),
    ];
    for (index, (title, diagnostics)) in sections.iter().enumerate() {
        if index > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{BOLD}{title}{BOLD:#} ({})", diagnostics.len())?;
        if diagnostics.is_empty() {
            writeln!(out, "  none")?;
        }
        for diagnostic in *diagnostics {
            write!(out, "  ")?;
            if let Some(plugin) = &diagnostic.plugin {
                write!(out, "[{plugin}] ")?;
            }
            print_diagnostic(out, diagnostic)?;
        }
    }
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    writeln!(out)?;
    if !counts.is_empty() {
        writeln!(out, "plugins: {}", counts.join(", "))?;
    }
    if report.ok {
        let style = status_style(Status::Enabled);
        writeln!(out, "{style}nothing needs action{style:#}")?;
    } else {
        let needing = report.errors.len() + report.blocked.len();
        let style = severity_style(Severity::Error);
        writeln!(
            out,
            "{style}{needing} problem{} need{} action{style:#}",
            plural(needing),
            if needing == 1 { "s" } else { "" }
        )?;
    }
    Ok(())
}
