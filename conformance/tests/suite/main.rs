//! The conformance crate's integration tests: the real `outpost-conformance` binary run
//! against the misbehaving fixture plugin (tests/fixtures/plugin.py, one mode per rule it
//! breaks) and against the example plugins of plugins/.
//!
//! - [`modes`]: the table of fixture mode -> the exact checks failed, warned and skipped.
//! - [`cli`]: a conforming plugin, the JSON, human and JUnit reports, baselines, hangs
//!   and exit codes.
//! - [`examples`]: the Python, Node and Rust examples pass.
//! - [`docs`]: docs/conformance.md lists the catalogue; every check cites a real section.
//!
//! Each test runs its own plugin processes, tagged so that [`support`] can check none
//! is left behind; nothing uses the network. Python 3 and Node must be on PATH.

mod cli;
mod docs;
mod examples;
mod modes;
mod support;
