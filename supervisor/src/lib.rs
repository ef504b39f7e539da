//! Outpost's supervisor: runs every enabled gateway plugin as its own child process and
//! supervises it over the protocol of `outpost-protocol`.
//!
//! Two planes:
//!
//! - the **control plane** ([`control`]) discovers plugins, reads their manifests,
//!   applies the safety gates, decides enablement and validates plugin config, all
//!   without running plugin code;
//! - the **data plane** spawns enabled plugins, performs the handshake, keeps the
//!   registry, routes calls, checks health, restarts and stops.

#![warn(missing_docs)]

pub mod control;
pub mod launch;
pub mod policy;
