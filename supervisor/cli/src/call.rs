//! `outpost call`: one call into a plugin, through the running `outpost serve` whose
//! API the config names, or (with `--standalone`, or when none answers) by starting the
//! plugins that can own the registration here, for this one call.
//!
//! Exit status: 0 answered; 1 the call failed (an error answer, nothing to take it,
//! no config); 2 a wrong command line; 3 the tool answered with `isError: true` (the
//! result is printed as any other).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use outpost_protocol::methods::CallContext;
use outpost_supervisor::{Call, PluginSpec, Supervisor};
use serde_json::{Value, json};

use crate::client::{self, Client, Failure, ServerArgs};
use crate::logging::{self, LogArgs};

/// How much longer than the slowest handshake timeout a standalone call waits for its
/// plugins.
const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// How long a call through the server may take when no `--timeout-ms` is given: the
/// server applies the plugin's own `timeouts.callMs`; this only bounds the wait here.
const CLIENT_WAIT: Duration = Duration::from_hours(1);

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 answered; 1 the call failed; 2 the command line is wrong; \
3 the tool answered with isError: true (the result is printed as usual)."
)]
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
    /// Start the plugins here for this one call instead of asking the running
    /// `outpost serve` (state kept by a plugin does not carry over).
    #[arg(long)]
    standalone: bool,
    #[command(flatten)]
    server: ServerArgs,
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

/// The call, checked before anything is asked of a server or a plugin.
struct Request {
    kind: outpost_supervisor::CallKind,
    input: Option<Value>,
    context: CallContext,
}

pub(crate) fn call(args: &CallArgs) -> anyhow::Result<ExitCode> {
    logging::init(&args.log, "warn");
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
    // Checked here too, so a malformed call fails before any plugin starts.
    drop(
        Call::from_parts(kind, &args.name, input.clone(), args.operation.as_deref())
            .map_err(|error| anyhow::anyhow!("{}", error.message))?,
    );
    let request = Request {
        kind,
        input,
        context,
    };
    if args.standalone {
        return standalone(args, request);
    }
    let settings = client::settings(&args.server)?;
    let wait = args.timeout_ms.map_or(CLIENT_WAIT, |ms| {
        Duration::from_millis(ms) + Duration::from_secs(5)
    });
    let client = match Client::new(&settings, wait) {
        Ok(client) => client,
        Err(why) => {
            eprintln!(
                "note: {why:#}\nnote: no `outpost serve` to ask; starting the plugins here for this one call (--standalone says so without this note)"
            );
            return standalone(args, request);
        }
    };
    let params = json!({
        "kind": request.kind,
        "name": args.name,
        "args": request.input,
        "operation": args.operation,
        "context": request.context,
        "timeoutMs": args.timeout_ms,
        "gatewayAuthenticated": true,
    });
    let outcome = logging::runtime()?.block_on(client.request("call", params));
    match outcome {
        Ok(answer) => print(&answer),
        Err(Failure::Unreachable(why)) => {
            eprintln!(
                "note: {why}\nnote: starting the plugins here for this one call (--standalone says so without this note)"
            );
            standalone(args, request)
        }
        Err(failure) => {
            client::report(&failure);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The exit status of a call the tool answered with `isError: true` (the tool ran and
/// reported a failure); 1 is a call that failed, 2 a wrong command line.
pub(crate) const TOOL_REPORTED_ERROR: u8 = 3;

/// Prints the answer; the status says whether the tool reported an error.
fn print(answer: &Value) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, answer)?;
    writeln!(out)?;
    if answer.get("isError") == Some(&Value::Bool(true)) {
        return Ok(ExitCode::from(TOOL_REPORTED_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the plugins that can own the call, makes it, stops them.
fn standalone(args: &CallArgs, request: Request) -> anyhow::Result<ExitCode> {
    let mut call = Call::from_parts(
        request.kind,
        &args.name,
        request.input,
        args.operation.as_deref(),
    )
    .map_err(|error| anyhow::anyhow!("{}", error.message))?
    .with_context(request.context)
    // The operator at the console passed the gateway's authentication.
    .gateway_authenticated(true);
    if let Some(ms) = args.timeout_ms {
        call = call.with_timeout(Duration::from_millis(ms));
    }
    let inventory = logging::load(&args.server.config)?;
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
            args.server.config.display()
        );
    }
    let settle = specs
        .iter()
        .map(|spec| Duration::from_millis(spec.launch.policy.timeouts.handshake_ms))
        .max()
        .unwrap_or_default()
        + SETTLE_MARGIN;
    logging::runtime()?.block_on(async move {
        let supervisor = Supervisor::start(specs)?;
        supervisor.wait_settled(settle).await;
        let outcome = supervisor.call(call).await;
        supervisor.shutdown().await;
        match outcome {
            Ok(answer) => print(&answer.into_value()),
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
