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
//!
//! Concurrency, cancellation and reused ids need a call that stays in flight: the
//! plugin's own slow call ([`Options::slow_call`], `--slow-call`), or `fixture/sleep`
//! for a plugin with the fixture capability. Without one those checks are skipped and
//! the report warns (`calls.slow-call`).
//!
//! The code follows the families: `plan` (what a run is about, before anything starts),
//! `session` (one conversation with one process), `suite` (one module per family),
//! `verdict` (what a check comes to, and the record of results), `report`.

#![warn(missing_docs)]

mod args;
mod checks;
mod launch;
mod manifest;
mod plan;
mod report;
mod run;
mod schemas;
mod session;
mod suite;
mod traffic;
mod verdict;

pub use checks::{CHECKS, Check, FAMILIES, Level, find_check, markdown_table};
pub use launch::ResolveError;
pub use manifest::{ConfigError, ManifestError};
pub use plan::{Options, RunError, SlowCall, SlowCallError, Target};
pub use report::{
    BaselineError, BaselineMark, CheckResult, ExpectedFailures, PluginSummary,
    REPORT_FORMAT_VERSION, Report, Status, Summary, render_row,
};
pub use run::run;
