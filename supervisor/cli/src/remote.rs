//! Commands that ask the running `outpost serve`: `outpost status`, `outpost reload`
//! and `outpost plugins restart|stop|start ID`.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::client::{self, Client, ServerArgs};
use crate::logging;

/// How long these commands wait for the server: a stop can take the whole escalation
/// (shutdown, EOF, SIGTERM: 8 s by default) and a reload stops what it must.
const WAIT: Duration = Duration::from_mins(2);

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the server's `plugins.list` answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OrderArgs {
    /// The plugin id.
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// What `outpost plugins restart|stop|start` asks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Order {
    Restart,
    Stop,
    Start,
}

/// Runs one request against the server; a failure is reported on stderr.
fn ask(
    server: &ServerArgs,
    method: &str,
    params: Value,
) -> anyhow::Result<Result<Value, ExitCode>> {
    let settings = client::settings(server)?;
    let client = Client::new(&settings, WAIT)?;
    match logging::runtime()?.block_on(client.request(method, params)) {
        Ok(answer) => Ok(Ok(answer)),
        Err(failure) => {
            client::report(&failure);
            Ok(Err(ExitCode::FAILURE))
        }
    }
}

/// `outpost status`: the supervised plugins, their states, pids, uptimes, restarts.
pub(crate) fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let info = match ask(&args.server, "server.info", json!({}))? {
        Ok(info) => info,
        Err(code) => return Ok(code),
    };
    let list = match ask(&args.server, "plugins.list", json!({}))? {
        Ok(list) => list,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({"server": info, "plugins": list["plugins"]}))?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "outpost {} (pid {}), up {}, config {}",
        info["version"].as_str().unwrap_or("?"),
        info["pid"],
        duration(info["uptimeMs"].as_u64().unwrap_or(0)),
        info["configPath"].as_str().unwrap_or("?"),
    )?;
    let rows: Vec<[String; 6]> = list["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["runtime"].is_object())
        .map(|row| {
            let runtime = &row["runtime"];
            [
                row["id"].as_str().unwrap_or("?").to_owned(),
                runtime["state"].as_str().unwrap_or("?").to_owned(),
                runtime["pid"]
                    .as_u64()
                    .map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
                runtime["uptimeMs"]
                    .as_u64()
                    .map_or_else(|| "-".to_owned(), duration),
                runtime["restarts"].as_u64().unwrap_or(0).to_string(),
                runtime["reason"]["message"]
                    .as_str()
                    .filter(|_| runtime["state"] != "ready")
                    .unwrap_or("")
                    .to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(out, "no plugin is supervised")?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["ID", "STATE", "PID", "UPTIME", "RESTARTS", "REASON"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 6]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i < 5 {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            } else {
                text.push_str(cell);
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(
            out,
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]])
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `outpost reload`: the server reads its config again and applies it.
pub(crate) fn reload(args: &ReloadArgs) -> anyhow::Result<ExitCode> {
    let reloaded = match ask(&args.server, "config.reload", json!({}))? {
        Ok(reloaded) => reloaded,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&reloaded)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = |value: &Value| -> String {
        let ids: Vec<&str> = value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    };
    let applied = &reloaded["applied"];
    writeln!(out, "config reloaded")?;
    writeln!(out, "  started:   {}", list(&applied["started"]))?;
    writeln!(out, "  restarted: {}", list(&applied["restarted"]))?;
    writeln!(out, "  stopped:   {}", list(&applied["stopped"]))?;
    writeln!(out, "  unchanged: {}", list(&applied["unchanged"]))?;
    if reloaded["retried"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
    {
        writeln!(
            out,
            "  failed plugins started again: {}",
            list(&reloaded["retried"])
        )?;
    }
    if let Some(warnings) = reloaded["warnings"].as_u64().filter(|w| *w > 0) {
        writeln!(
            out,
            "  {warnings} warning(s): `outpost plugins doctor` lists them"
        )?;
    }
    if reloaded["restartNeeded"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
    {
        writeln!(
            out,
            "  changed but applied only when `outpost serve` restarts: {}",
            list(&reloaded["restartNeeded"])
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `outpost plugins restart|stop|start ID`.
pub(crate) fn order(order: Order, args: &OrderArgs) -> anyhow::Result<ExitCode> {
    let (method, done) = match order {
        Order::Restart => ("plugins.restart", "restarted"),
        Order::Stop => ("plugins.stop", "stopped"),
        Order::Start => ("plugins.start", "started"),
    };
    match ask(&args.server, method, json!({ "id": args.id }))? {
        Ok(answer) => {
            println!(
                "{done} `{}`: it is {} now",
                args.id,
                answer["state"].as_str().unwrap_or("in an unknown state")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

/// `1h02m`, `3m12s`, `41s`, `250ms`.
fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        0 => format!("{ms}ms"),
        1..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d{:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(super::duration(250), "250ms");
        assert_eq!(super::duration(41_000), "41s");
        assert_eq!(super::duration(192_000), "3m12s");
        assert_eq!(super::duration(3_720_000), "1h02m");
        assert_eq!(super::duration(90_000_000), "1d01h");
    }
}
