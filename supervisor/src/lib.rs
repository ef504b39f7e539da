//! Outpost's supervisor: runs every enabled gateway plugin as its own child process and
//! supervises it over the protocol of `outpost-protocol`.
//!
//! Two planes:
//!
//! - the **control plane** ([`control`]) discovers plugins, reads their manifests,
//!   applies the safety gates, decides enablement and validates plugin config, all
//!   without running plugin code;
//! - the **data plane** ([`Supervisor`]) spawns enabled plugins, performs the
//!   handshake, keeps the [`registry`], routes calls, checks health, restarts and stops.
//!
//! docs/architecture.md describes the supervision loop and its invariants.

#![warn(missing_docs)]

pub mod control;
mod hooks;
mod host;
pub mod launch;
mod os;
mod plugin;
pub mod policy;
pub mod registry;
pub mod restart;
mod runner;
mod spec;
mod stderr;
mod supervisor;
mod throttle;

pub use hooks::{HookOutcome, HookRun, HookRunOutcome};
pub use os::ExitDescription;
pub use spec::{Declarations, PluginSpec};
pub use supervisor::{StartError, Supervisor};
