//! The plugin on `outpost-sdk` the benches measure: one tool that returns its text and
//! one that exits at once, as a crash.

use std::process::ExitCode;

use outpost_sdk::{Context, Error, Plugin, Tool, ToolResult};
use serde_json::{Value, json};

#[derive(serde::Deserialize)]
struct EchoArgs {
    text: String,
}

async fn echo(_ctx: Context, args: EchoArgs) -> Result<ToolResult, Error> {
    Ok(ToolResult::text(args.text))
}

async fn crash(_ctx: Context, _args: Value) -> Result<ToolResult, Error> {
    std::process::exit(1)
}

/// The `initialize` request the benches write by hand to a plugin they spawned
/// themselves, as the supervisor would send it, with its newline.
#[allow(dead_code, reason = "not every bench spawns the plugin by hand")]
pub(crate) fn initialize_line() -> String {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersions": [outpost_protocol::PROTOCOL_VERSION],
            "host": {"name": "bench"},
            "pluginId": "bench",
            "config": {},
            "limits": {"maxMessageBytes": 16_777_216, "maxConcurrentRequests": 4096},
        },
    });
    format!("{initialize}\n")
}

/// Serves plugin `id` with the echo tool `echo_name` and the crashing tool `crash_name`.
pub(crate) fn sdk_plugin(id: String, echo_name: String, crash_name: String) -> ExitCode {
    Plugin::builder(id)
        .tool(
            Tool::new(echo_name, "Returns its text").input_schema(json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            })),
            echo,
        )
        .tool(Tool::new(crash_name, "Exits at once, as a crash"), crash)
        .run()
}
