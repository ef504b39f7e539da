//! The Outpost conformance suite: checks that a plugin speaks the Outpost plugin
//! protocol (docs/protocol.md) correctly, the way an author's CI needs it.
//!
//! The suite plays the host. It starts the plugin as the host would (no shell, the
//! plugin root as working directory, a scrubbed environment, its own process group),
//! drives it through the protocol, and judges what comes back against the spec: every
//! [`Check`] has a stable id, a level (MUST fails the run, SHOULD warns) and the section
//! of the spec it enforces. It shares only the wire types and the codec with the rest of
//! Outpost (`outpost-protocol`): it does not use the supervisor, so it finds the
//! mistakes a stranger host would.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), outpost_conformance::RunError> {
//! use outpost_conformance::{Options, Target, run};
//!
//! let target = Target::PluginDir("plugins/python-example".into());
//! let report = run(&target, &Options::default(), &mut |result| {
//!     eprintln!("{} {:?}", result.check.id, result.status);
//! })
//! .await?;
//! assert!(report.passed(), "{}", report.to_json());
//! # Ok(())
//! # }
//! ```
//!
//! # Theory of operation
//!
//! A run is a few short sessions, each a fresh plugin process (see the `suite` module
//! docs): the main session (handshake, calls, bad lines, shutdown), one that sends
//! requests before `initialize`, one that negotiates versions and ends with SIGTERM,
//! and one that offers only a version no plugin speaks. Every wait has a timeout; a
//! step that times out or kills the plugin is reported, and the next step gets a fresh
//! process. The stream checks are judged from every line of every session.

#![warn(missing_docs)]

mod args;
mod checks;
mod launch;
mod manifest;
mod report;
mod run;
mod schemas;
mod session;
mod suite;
mod traffic;

pub use checks::{CHECKS, Check, FAMILIES, Level, find_check};
pub use launch::ResolveError;
pub use manifest::{ConfigError, ManifestError};
pub use report::{
    BaselineError, BaselineMark, CheckResult, ExpectedFailures, PluginSummary,
    REPORT_FORMAT_VERSION, Report, Status, Summary, render_row,
};
pub use run::{Options, RunError, Target, run};
