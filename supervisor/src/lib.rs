//! Outpost's supervisor: runs every enabled gateway plugin as its own child process and
//! supervises it over the protocol of `outpost-protocol`.
//!
//! A gateway embeds it in three steps: the control plane turns a config file into
//! [`PluginSpec`]s without running anything, a [`Supervisor`] runs them, and every call
//! goes through [`Supervisor::call`]:
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
mod launch;
mod policy;
mod spec;

pub use data::{
    Answer, Applied, ApplyError, Builder, Call, CallKind, ControlError, Exit, ExitCause,
    ExitDescription, Gateway, GatewayFuture, HookOutcome, HookRun, HookRunOutcome, MethodRequest,
    NoGateway, PluginSnapshot, PluginState, Reason, RegistrationSnapshot, RegistryEvent,
    RegistrySnapshot, Shape, StartError, Supervisor,
};
pub use launch::LaunchSpec;
pub use policy::{HealthPolicy, Limits, RestartPolicy, StopPolicy, SupervisionPolicy, Timeouts};
pub use spec::{Declarations, PluginSpec};
