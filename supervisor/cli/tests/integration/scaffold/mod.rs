//! The example plugins in other languages and the plugin templates of `outpost new
//! plugin`, driven as real child processes over pipes.
//!
//! - [`examples`]: every protocol feature on `plugins/python-example` and
//!   `plugins/node-example`;
//! - [`new`]: each language's template, generated into a temporary directory and run;
//! - [`install`]: `scripts/install.sh` into a temporary prefix, and a Rust plugin
//!   generated, built and checked from outside the repository with what it installed.
//!
//! The tests need `python3` (3.11+) and `node` (20+) on the search path, as the plugins'
//! manifests do.

mod client;
mod examples;
mod install;
mod new;

use std::path::Path;

use serde_json::{Value, json};

use client::PluginProcess;

/// Starts a plugin the way the `outpost` block of its manifest says: `command` (a bare
/// name found on the search path, or a path inside the root) with `args`, in the root.
pub(crate) fn spawn_from_manifest(
    root: &Path,
    manifest: &Value,
    plugin_id: &str,
    by_hand: bool,
) -> PluginProcess {
    let outpost = &manifest["outpost"];
    let command = outpost["command"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: outpost.command is missing", root.display()));
    let program = if command.contains('/') {
        root.join(command).to_string_lossy().into_owned()
    } else {
        command.to_owned()
    };
    let args: Vec<String> = outpost["args"]
        .as_array()
        .map(|args| {
            args.iter()
                .map(|a| a.as_str().expect("string args").to_owned())
                .collect()
        })
        .unwrap_or_default();
    PluginProcess::spawn(root, &program, &args, plugin_id, by_hand)
}

/// `initialize` params as the host sends them.
pub(crate) fn initialize_params(plugin_id: &str, config: &Value) -> Value {
    json!({
        "protocolVersions": ["1"],
        "host": {"name": "outpost-tests", "version": "0.0.0"},
        "pluginId": plugin_id,
        "config": config,
        "limits": {"maxMessageBytes": 16_777_216, "maxConcurrentRequests": 16, "shutdownTimeoutMs": 3000},
        "capabilities": {"runtime": ["host/callMethod", "host/getConfig"]},
        "hostPid": std::process::id(),
    })
}

/// Sends `initialized`, accepting every registration of an `initialize` result.
pub(crate) fn accept_all(plugin: &mut PluginProcess, result: &Value) {
    let accepted: Vec<Value> = result["registrations"]
        .as_array()
        .expect("registrations")
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let key = ["name", "event", "method", "path", "id"]
                .iter()
                .find_map(|k| r.get(*k))
                .cloned()
                .unwrap_or(Value::Null);
            json!({"index": index, "kind": r["kind"], "key": key})
        })
        .collect();
    plugin.notify("initialized", json!({"accepted": accepted, "rejected": []}));
}
