//! The data plane: spawning the plugins the control plane handed over, the handshake,
//! the registry, routing calls, health, restarts and stops.
//!
//! ```text
//!   supervisor ──> runner ──> host ──> route ──> shared
//!        │            │                  │
//!        └──> route   └──> os, stderr    └──> plugin, registry, hooks
//! ```
//!
//! Module dependencies point one way, as drawn: the [`Supervisor`] starts a runner per
//! plugin and routes calls; a runner owns one plugin's processes and serves what the
//! plugin asks of the host; the host routes a plugin's `host/callMethod` like any other
//! call; everything shares one [`shared::Shared`]. docs/architecture.md describes the
//! supervision loop and its invariants.

mod call;
mod gateway;
mod hooks;
mod host;
mod metrics;
mod observe;
mod os;
mod plugin;
mod reason;
mod registry;
mod restart;
mod route;
mod runner;
mod schemas;
mod shared;
mod stderr;
mod supervisor;
mod throttle;

pub use call::{Answer, Call, CallKind};
pub use gateway::{Gateway, GatewayFuture, MethodRequest, NoGateway};
pub use hooks::{HookOutcome, HookRun, HookRunOutcome};
pub use os::ExitDescription;
pub(crate) use os::{probe_host, state_dir_name};
pub use reason::{Exit, ExitCause, Reason};
pub use registry::{
    PluginSnapshot, PluginState, RegistrationSnapshot, RegistryEvent, RegistrySnapshot, Shape,
    Signal, SignalKind,
};
pub use supervisor::{Applied, ApplyError, Builder, ControlError, StartError, Supervisor};
