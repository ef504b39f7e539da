//! Outpost's supervisor: runs every enabled gateway plugin as its own child process and
//! supervises it over the protocol of `outpost-protocol`.
//!
//! A gateway embeds it with a [`Supervisor`] started on [`PluginSpec`]s, and makes every
//! call through [`Supervisor::call`]. This example runs a plugin of eight lines of
//! Python:
//!
//! ```
//! use std::time::Duration;
//!
//! use outpost_protocol::ManifestField;
//! use outpost_supervisor::{Answer, Call, Declarations, LaunchSpec, PluginSpec, Supervisor};
//! use serde_json::json;
//!
//! const PLUGIN: &str = r#"
//! import json, sys
//! for line in sys.stdin:
//!     msg = json.loads(line)
//!     if "id" not in msg: continue
//!     tool = {"kind": "tool", "name": "greet", "description": "Greets", "inputSchema": {"type": "object"}}
//!     result = {"protocolVersion": "1", "plugin": {"id": "hello"}, "registrations": [tool]} if msg["method"] == "initialize" else {}
//!     if msg["method"] == "tool/invoke": result = {"content": [{"type": "text", "text": "hello " + msg["params"]["arguments"]["name"]}]}
//!     print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
//! "#;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! std::fs::write(root.path().join("plugin.py"), PLUGIN)?;
//! // What the plugin may register: a manifest's `contracts.tools`.
//! let declarations = Declarations::default().with(ManifestField::Contracts("tools"), "greet");
//! let launch = LaunchSpec::new("/usr/bin/env", root.path()).with_args(["python3", "plugin.py"]);
//! let supervisor = Supervisor::start(vec![PluginSpec::new("hello", launch).with_declarations(declarations)])?;
//! supervisor.wait_settled(Duration::from_secs(10)).await;
//!
//! let arguments = json!({"name": "Ada"}).as_object().cloned().unwrap_or_default();
//! let call = Call::tool("greet", arguments).with_timeout(Duration::from_secs(5));
//! let Answer::Tool(result) = supervisor.call(call).await? else { unreachable!() };
//! assert_eq!(serde_json::to_value(&result.content)?, json!([{"type": "text", "text": "hello Ada"}]));
//!
//! supervisor.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! A gateway with a config file lets the control plane make the specs, without running
//! anything, and applies a changed config without touching what did not change:
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//!
//! use outpost_supervisor::{Call, Supervisor, control};
//! use serde_json::json;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let inventory = control::load(Path::new("outpost.json5"))?;
//! let supervisor = Supervisor::start(inventory.plugin_specs())?;
//! supervisor.wait_settled(Duration::from_secs(15)).await;
//!
//! let arguments = json!({"text": "one two two"}).as_object().cloned().unwrap();
//! let answer = supervisor
//!     .call(Call::tool("word_count", arguments).with_timeout(Duration::from_secs(5)))
//!     .await?;
//! println!("{}", answer.into_value());
//!
//! // After the config changed: unchanged plugins keep running untouched.
//! let applied = supervisor.apply(control::load(Path::new("outpost.json5"))?.plugin_specs()).await?;
//! println!("restarted: {:?}", applied.restarted);
//!
//! supervisor.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Theory of operation
//!
//! - The **control plane** ([`control`]) discovers plugins, reads their manifests,
//!   applies the safety gates, decides enablement and validates plugin config, all
//!   without running plugin code. Its output is one [`PluginSpec`] per plugin to run.
//! - The **data plane** ([`Supervisor`]) spawns each plugin, performs the handshake,
//!   keeps the registry of what every plugin registered ([`RegistrySnapshot`],
//!   [`RegistryEvent`]), routes each [`Call`] to its owner with a deadline and
//!   cancellation, checks health, restarts crashed plugins with backoff, gives up on
//!   crash loops ([`Reason`] says why, as data), reconciles with a new set of specs
//!   ([`Supervisor::apply`]), and stops everything.
//! - What plugins may ask of the gateway itself (its own gateway methods, its config)
//!   goes to the [`Gateway`] the embedder gives the [`Builder`].
//!
//! docs/embedding.md is the guide for gateway authors; docs/architecture.md describes
//! the supervision loop and its invariants.

#![warn(missing_docs)]

pub mod control;
mod data;
pub mod isolation;
mod launch;
mod policy;
pub mod shown;
mod spec;

pub use data::{
    Answer, Applied, ApplyError, Builder, Call, CallKind, ControlError, Exit, ExitCause,
    ExitDescription, Gateway, GatewayFuture, HookOutcome, HookRun, HookRunOutcome, MethodRequest,
    NoGateway, PluginSnapshot, PluginState, Reason, RegistrationSnapshot, RegistryEvent,
    RegistrySnapshot, Shape, Signal, SignalKind, StartError, Supervisor,
};
pub use isolation::Isolation;
pub use launch::{FsAccess, LaunchSpec, RunAs, Sandbox};
pub use policy::{HealthPolicy, Limits, RestartPolicy, StopPolicy, SupervisionPolicy, Timeouts};
pub use spec::{Declarations, HookPolicy, PluginSpec};
