//! The integration tests of `outpost-supervisor`: one binary, one module per subject:
//! the control plane and the data plane. The `outpost` command's tests are in
//! `supervisor/cli/tests`.

#[path = "../support/cases.rs"]
mod cases;
mod control;
mod data_plane;
mod isolation;

use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_supervisor::Supervisor;

/// `supervisor/tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Shuts `supervisor` down, failing the test if that takes over a minute (it takes
/// about as long as its slowest plugin's stop: seconds): a stop that never ends must
/// fail the run, not hang it.
pub(crate) async fn shut_down(supervisor: &Supervisor) {
    const PATIENCE: Duration = Duration::from_mins(1);
    tokio::time::timeout(PATIENCE, supervisor.shutdown())
        .await
        .unwrap_or_else(|_| panic!("the supervisor's shutdown did not end within {PATIENCE:?}"));
}
